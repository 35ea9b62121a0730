// The `webhook` channel: one HTTP POST of a JSON body per fire, signed when a secret is set,
// run concurrently with every other transfer on the claim loop's Transfers.

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "channel.hpp"
#include "curl_delivery.hpp"
#include "nudge/secrets.hpp"
#include "signature.hpp"
#include "transfers.hpp"

namespace nudge {

namespace {

// Everything one transfer needs until it ends; libcurl keeps pointers into it.
struct Transfer {
  std::string body;
  curl_slist* headers = nullptr;
  std::string response;
  char error[CURL_ERROR_SIZE] = {};
  std::vector<std::string> hidden;  // parts of the URL that no error message may show

  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer() { curl_slist_free_all(headers); }
};

// Keeps the start of the response body and swallows the rest, so a big 2xx still succeeds.
std::size_t keep_start(char* data, std::size_t size, std::size_t count, void* user) {
  auto& response = static_cast<Transfer*>(user)->response;
  const std::size_t bytes = size * count;
  if (response.size() < kMaxResponseBytes)
    response.append(data, std::min(bytes, kMaxResponseBytes - response.size()));
  return bytes;
}

// The secret-bearing parts of `url` (user, password, query, fragment; raw and decoded), or the
// whole URL when it does not parse. Empty when the URL is fine but has none.
std::vector<std::string> secret_parts(const std::string& url, std::string& scheme,
                                      std::string& parse_error) {
  std::vector<std::string> parts;
  CURLU* u = curl_url();
  if (u == nullptr) {
    parse_error = "out of memory";
    return parts;
  }
  if (const CURLUcode rc = curl_url_set(u, CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME);
      rc != CURLUE_OK) {
    parse_error = curl_url_strerror(rc);
  } else {
    char* part = nullptr;
    if (curl_url_get(u, CURLUPART_SCHEME, &part, 0) == CURLUE_OK) scheme = part;
    curl_free(part);
    for (const CURLUPart which :
         {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_QUERY, CURLUPART_FRAGMENT}) {
      for (const unsigned int flags : {0u, static_cast<unsigned int>(CURLU_URLDECODE)}) {
        part = nullptr;
        if (curl_url_get(u, which, &part, flags) == CURLUE_OK && part != nullptr && *part != '\0')
          parts.emplace_back(part);
        curl_free(part);
      }
    }
  }
  curl_url_cleanup(u);
  return parts;
}

class WebhookChannel final : public Channel {
 public:
  WebhookChannel(WebhookConfig config, Transfers& transfers)
      : config_(std::move(config)), transfers_(transfers) {}

  void start(const Fire& fire, DeliveryDone done) override {
    if (!fire.target) {
      done({false,
            "no address: the reminder has no target and contacts has no webhook address for " +
                fire.entity_type + "/" + fire.entity_id,
            std::nullopt,
            {}});
      return;
    }
    const std::string& url = *fire.target;

    auto transfer = std::make_shared<Transfer>();
    std::string scheme;
    std::string parse_error;
    transfer->hidden = secret_parts(url, scheme, parse_error);
    if (!parse_error.empty()) {
      done({false, "invalid webhook URL: " + parse_error, std::nullopt, {}});
      return;
    }
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme != "http" && scheme != "https") {
      done({false,
            "unsupported webhook URL scheme \"" + scheme + "\" (only http and https)",
            std::nullopt,
            {}});
      return;
    }
    transfer->hidden.push_back(url);

    const std::string key = fire.idempotency_key();
    transfer->body = body(fire, key);
    if (!add_header(*transfer, "Content-Type: application/json") ||
        !add_header(*transfer, "Idempotency-Key: " + key) ||
        !add_header(*transfer, "Nudge-Attempt: " + std::to_string(fire.attempt)) ||
        !add_header(*transfer, "Expect:") ||
        (!config_.secret.empty() &&
         !add_header(*transfer, "Nudge-Signature: " + webhook_signature(config_.secret, unix_now(),
                                                                        transfer->body)))) {
      done({false, "out of memory building the webhook request", std::nullopt, {}});
      return;
    }

    start_curl_delivery(
        transfers_, std::move(done), [&](CURL* easy) { return configure(easy, url, *transfer); },
        [transfer](CURLcode result, CURL* handle) { return outcome(*transfer, result, handle); },
        [&](std::string text) { return mask_secrets(text, transfer->hidden); });
  }

 private:
  static std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  static std::string body(const Fire& fire, const std::string& key) {
    const nlohmann::ordered_json head = {{"reminder_id", fire.id},
                                         {"entity_type", fire.entity_type},
                                         {"entity_id", fire.entity_id},
                                         {"event_type", fire.event_type},
                                         {"scheduled_for", rfc3339_from_pg(fire.scheduled_for)},
                                         {"attempt", fire.attempt},
                                         {"idempotency_key", key}};
    // The payload is already JSON text from the database: splice it in rather than re-parse it.
    std::string text = head.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text.pop_back();
    text += ",\"payload\":";
    text += fire.payload_json.empty() ? std::string("{}") : fire.payload_json;
    text += '}';
    return text;
  }

  static bool add_header(Transfer& transfer, const std::string& line) {
    curl_slist* list = curl_slist_append(transfer.headers, line.c_str());
    if (list == nullptr) return false;
    transfer.headers = list;
    return true;
  }

  CURLcode configure(CURL* easy, const std::string& url, Transfer& transfer) const {
    const auto timeout = [](int ms) { return static_cast<long>(std::max(ms, 0)); };
    for (const CURLcode rc : {
             curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.error),
             curl_easy_setopt(easy, CURLOPT_URL, url.c_str()),
             curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"),
             curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"),
             curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L),
             curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L),
             curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout(config_.connect_timeout_ms)),
             curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout(config_.timeout_ms)),
             curl_easy_setopt(easy, CURLOPT_USERAGENT, "nudge-worker"),
             curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer.headers),
             curl_easy_setopt(easy, CURLOPT_POST, 1L),
             curl_easy_setopt(easy, CURLOPT_POSTFIELDS, transfer.body.data()),
             curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                              static_cast<curl_off_t>(transfer.body.size())),
             curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &keep_start),
             curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer),
         }) {
      if (rc != CURLE_OK) return rc;
    }
    return CURLE_OK;
  }

  static Delivery outcome(const Transfer& transfer, CURLcode result, CURL* handle) {
    Delivery delivery;
    delivery.response = transfer.response;
    if (result != CURLE_OK) {
      std::string error = curl_easy_strerror(result);
      std::string detail = transfer.error;
      while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
      if (!detail.empty() && detail != error) error += ": " + detail;
      delivery.error = mask_secrets(error, transfer.hidden);
      return delivery;
    }
    long code = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
    if (code == 0) {
      delivery.error = "no HTTP status in the response";
      return delivery;
    }
    delivery.status_code = static_cast<int>(code);
    if (code >= 200 && code < 300) {
      delivery.delivered = true;
    } else if (code >= 300 && code < 400) {
      delivery.error = "HTTP " + std::to_string(code) + " (redirects are not followed)";
    } else {
      delivery.error = "HTTP " + std::to_string(code);
    }
    return delivery;
  }

  WebhookConfig config_;
  Transfers& transfers_;
};

}  // namespace

std::unique_ptr<Channel> make_webhook_channel(const WebhookConfig& config, Transfers& transfers) {
  return std::make_unique<WebhookChannel>(config, transfers);
}

}  // namespace nudge
