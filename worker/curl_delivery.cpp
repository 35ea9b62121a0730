#include "curl_delivery.hpp"

#include <exception>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

namespace nudge {

namespace {

// A new handle set up by `configure`, or nullptr after `done` has been told why not.
CURL* configured_handle(DeliveryDone& done, const std::function<CURLcode(CURL*)>& configure,
                        const std::function<std::string(std::string)>& mask) {
  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    done(not_sent("libcurl could not create a transfer"));
    return nullptr;
  }
  if (const CURLcode rc = configure(easy); rc != CURLE_OK) {
    curl_easy_cleanup(easy);
    done(not_sent(mask(std::string("libcurl: ") + curl_easy_strerror(rc))));
    return nullptr;
  }
  return easy;
}

}  // namespace

std::string curl_error_text(CURLcode result, const char* detail) {
  const std::string_view code_text = curl_easy_strerror(result);
  std::string_view said = detail == nullptr ? "" : detail;
  while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.remove_suffix(1);
  const std::string repeated = ": " + std::string(code_text);
  if (said.size() > repeated.size() && said.ends_with(repeated))
    said.remove_suffix(repeated.size());
  if (said.empty() || said == code_text) return std::string(code_text);
  return std::string(code_text) + ": " + std::string(said);
}

void start_curl_delivery(Transfers& transfers, DeliveryDone done,
                         const std::function<CURLcode(CURL*)>& configure,
                         std::function<Delivery(CURLcode, CURL*)> outcome,
                         const std::function<std::string(std::string)>& mask,
                         ConnectPolicy* policy) {
  CURL* easy = configured_handle(done, configure, mask);
  if (easy == nullptr) return;

  // Shared with the callback, so it is still here if add() throws.
  auto pending = std::make_shared<DeliveryDone>(std::move(done));
  try {
    // The callback holds `outcome` (and so the transfer's data) until Transfers has cleaned up
    // the handle (or, when Transfers is destroyed first, until then).
    transfers.add(
        easy,
        [pending, outcome = std::move(outcome)](CURLcode result, CURL* handle) {
          DeliveryDone report = std::move(*pending);
          report(outcome(result, handle));
        },
        policy);
  } catch (const std::exception& e) {
    // add() has cleaned up the handle already.
    DeliveryDone report = std::move(*pending);
    report({false, mask(e.what()), std::nullopt, {}});
  }
}

void start_curl_delivery_on_lane(Transfers& home, DeliveryDone done,
                                 const std::function<CURLcode(CURL*)>& configure,
                                 std::function<Delivery(CURLcode, CURL*)> outcome,
                                 std::function<std::string(std::string)> mask) {
  CURL* easy = configured_handle(done, configure, mask);
  if (easy == nullptr) return;
  auto pending = std::make_shared<DeliveryDone>(std::move(done));
  // Called once, on the lane's thread: the outcome goes back to `home`'s.
  const auto report = [&home, pending](Delivery delivery) {
    home.post([pending, delivery = std::move(delivery)]() mutable {
      DeliveryDone report = std::move(*pending);
      report(std::move(delivery));
    });
  };
  try {
    home.spawn([&home, easy, report, outcome = std::move(outcome), mask](Transfers* own) {
      if (own == nullptr) {  // never started: the worker is stopping
        report(outcome(CURLE_ABORTED_BY_CALLBACK, easy));
        curl_easy_cleanup(easy);
        return;
      }
      try {
        own->add(easy, [&home, &report, &outcome, own](CURLcode result, CURL* handle) {
          Delivery delivery = outcome(home.aborting() ? CURLE_ABORTED_BY_CALLBACK : result, handle);
          // A conversation that failed leaves its connection in a state nobody knows (a reply
          // that arrives after its timeout would answer the next message's first command): the
          // lane keeps it no longer.
          if (!delivery.delivered) own->cut_connections();
          report(std::move(delivery));
        });
      } catch (const std::exception& e) {  // add() has cleaned up the handle already
        report({false, mask(e.what()), std::nullopt, {}});
        return;
      }
      while (own->active() > 0) own->run(100, {});
    });
  } catch (const std::exception& e) {  // no thread: nothing ran
    curl_easy_cleanup(easy);
    DeliveryDone report_here = std::move(*pending);
    report_here(
        {false, mask(std::string("no thread for the delivery: ") + e.what()), std::nullopt, {}});
  }
}

}  // namespace nudge
