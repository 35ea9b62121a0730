#include "curl_delivery.hpp"

#include <exception>
#include <memory>
#include <optional>
#include <utility>

namespace nudge {

void start_curl_delivery(Transfers& transfers, DeliveryDone done,
                         const std::function<CURLcode(CURL*)>& configure,
                         std::function<Delivery(CURLcode, CURL*)> outcome,
                         const std::function<std::string(std::string)>& mask,
                         ConnectPolicy* policy) {
  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    done(not_sent("libcurl could not create a transfer"));
    return;
  }
  if (const CURLcode rc = configure(easy); rc != CURLE_OK) {
    curl_easy_cleanup(easy);
    done(not_sent(mask(std::string("libcurl: ") + curl_easy_strerror(rc))));
    return;
  }

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

}  // namespace nudge
