// The `webhook` channel: one HTTP request per fire (Nudge's own POST of JSON, or the reminder's
// own request: webhook_request.hpp), signed when a secret is set, run concurrently with every
// other transfer on the claim loop's Transfers. The SSRF guard checks every address it connects
// to; redirects are not followed (a 3xx is a failed attempt), so no other address is reached.

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "channel.hpp"
#include "curl_delivery.hpp"
#include "nudge/address_guard.hpp"
#include "nudge/secrets.hpp"
#include "nudge/url_host.hpp"
#include "signature.hpp"
#include "transfers.hpp"
#include "webhook_request.hpp"

namespace nudge {

namespace {

// Everything one transfer needs until it ends; libcurl keeps pointers into it.
struct HttpTransfer {
  WebhookRequest request;
  curl_slist* headers = nullptr;
  std::string response;
  std::size_t keep = kMaxResponseBytes;  // bytes of the response kept (see masked_response)
  bool cut = false;                      // the response was longer than that
  std::size_t read = 0;                  // bytes of the body read in all
  bool stopped = false;                  // and read no further (kMaxReadBytes)
  char error[CURL_ERROR_SIZE] = {};
  std::vector<std::string> hidden;  // parts of the URL, and secrets, that no error may show
  std::vector<std::string> echoes;  // what the response may echo of them (response_echoes)
  ConnectPolicy connect;            // the SSRF guard, and why it refused an address

  HttpTransfer() = default;
  HttpTransfer(const HttpTransfer&) = delete;
  HttpTransfer& operator=(const HttpTransfer&) = delete;
  ~HttpTransfer() { curl_slist_free_all(headers); }
};

// A body read past this is not read on: its status decides (explore29a LOW 8: a receiver
// streaming without end was read for the whole timeout, 4.9 GB in 10 s).
constexpr std::size_t kMaxReadBytes = 65536;

// Keeps the start of the response body and swallows the rest, so a big 2xx still succeeds, up
// to kMaxReadBytes; then ends the transfer (its status is known).
std::size_t keep_start(char* data, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<HttpTransfer*>(user);
  const std::size_t bytes = size * count;
  transfer.read += bytes;
  if (transfer.read > kMaxReadBytes + transfer.keep) {
    transfer.stopped = true;
    transfer.cut = true;
    return 0;  // CURLE_WRITE_ERROR: outcome() reads it as the end of a body
  }
  const std::size_t room = transfer.keep - std::min(transfer.keep, transfer.response.size());
  transfer.response.append(data, std::min(bytes, room));
  transfer.cut = transfer.cut || bytes > room;
  return bytes;
}

// The kept response with every secret the request carried masked (a receiver may echo its
// headers). It keeps the longest secret's length beyond kMaxResponseBytes, so a secret that
// begins within the part that is stored is masked whole; where the response was cut, a tail
// that begins a secret goes too.
std::string masked_response(const HttpTransfer& transfer) {
  const auto& secrets = transfer.echoes;
  if (secrets.empty()) return transfer.response;
  std::string out = mask_secrets(transfer.response, secrets);
  if (!transfer.cut) return out;
  for (const std::string& secret : secrets) {
    for (std::size_t k = std::min(secret.size() - 1, out.size()); k > 0; --k) {
      if (out.compare(out.size() - k, k, secret, 0, k) == 0) {
        out.resize(out.size() - k);
        break;
      }
    }
  }
  return out;
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

// What a receiver's answer may echo of the credentials a request carried, to mask it with: its
// secrets (a header's, with their base64 forms; a URL kept in a secret and what follows its
// host), the URL's user and password and the Basic credential libcurl makes of them, a URL
// secret's path, query (and each value in it) and fragment, and each as JSON ("\/") or
// percent-encoding escapes it (explore29a #2: a receiver echoing the request's headers had Basic
// user:password stored).
std::vector<std::string> response_echoes(const WebhookRequest& request) {
  std::vector<std::string> echoes = request.secrets;
  const bool secret_url = std::find(request.secrets.begin(), request.secrets.end(), request.url) !=
                          request.secrets.end();
  if (CURLU* u = curl_url(); u != nullptr && curl_url_set(u, CURLUPART_URL, request.url.c_str(),
                                                          CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
    const auto part = [&](CURLUPart which, unsigned int flags) {
      char* text = nullptr;
      std::string out;
      if (curl_url_get(u, which, &text, flags) == CURLUE_OK && text != nullptr) out = text;
      curl_free(text);
      return out;
    };
    for (const unsigned int flags : {0u, static_cast<unsigned int>(CURLU_URLDECODE)}) {
      for (std::string& echo :
           userinfo_echoes(part(CURLUPART_USER, flags), part(CURLUPART_PASSWORD, flags)))
        echoes.push_back(std::move(echo));
      if (!secret_url) continue;
      if (std::string path = part(CURLUPART_PATH, flags); path.size() > 1)
        echoes.push_back(std::move(path));
      for (const CURLUPart which : {CURLUPART_QUERY, CURLUPART_FRAGMENT}) {
        if (std::string text = part(which, flags); !text.empty()) {
          // Each value of a query on its own too (echoed as {"args": {"token": ...}}).
          for (std::size_t start = 0; start <= text.size();) {
            const std::size_t amp = std::min(text.find('&', start), text.size());
            const std::size_t eq = text.find('=', start);
            if (eq != std::string::npos && eq < amp)
              echoes.push_back(text.substr(eq + 1, amp - eq - 1));
            start = amp + 1;
          }
          echoes.push_back(std::move(text));
        }
      }
    }
    curl_url_cleanup(u);
  } else if (u != nullptr) {
    curl_url_cleanup(u);
  }
  const std::size_t plain = echoes.size();
  for (std::size_t i = 0; i < plain; ++i)
    for (std::string& form : escaped_forms(echoes[i])) echoes.push_back(std::move(form));
  return echoes;
}

// The value of response header `name` (the last request's), or "" when it has none.
std::string response_header(CURL* handle, const char* name) {
  curl_header* header = nullptr;
  if (curl_easy_header(handle, name, 0, CURLH_HEADER, -1, &header) != CURLHE_OK) return "";
  return header->value;
}

// How long the receiver asked to wait, in seconds (over 0), if it did. A Retry-After date is
// read against the receiver's own Date when it sends one, so a worker whose clock is off waits
// what was asked (explore16a #7: an hour ahead, the wait was dropped; a day behind, capped at
// 300 s); without a Date, against this machine's clock, as libcurl reads it.
std::optional<curl_off_t> retry_after(CURL* handle) {
  const std::string asked = response_header(handle, "Retry-After");
  const std::string date = response_header(handle, "Date");
  const bool is_date = asked.find_first_not_of("0123456789 \t") != std::string::npos;
  if (is_date && !date.empty()) {
    const time_t until = curl_getdate(asked.c_str(), nullptr);
    const time_t now = curl_getdate(date.c_str(), nullptr);
    if (until >= 0 && now >= 0) {
      if (until > now) return static_cast<curl_off_t>(until - now);
      return std::nullopt;
    }
  }
  curl_off_t wait = 0;
  if (curl_easy_getinfo(handle, CURLINFO_RETRY_AFTER, &wait) == CURLE_OK && wait > 0) return wait;
  // Seconds past what libcurl reads (20 digits) are as long a wait as a year is, not no wait
  // (explore31d F6: "neither seconds nor a date", where 8 digits were "taken as a year").
  if (!is_date && asked.find_first_not_of("0 \t") != std::string::npos)
    return std::numeric_limits<curl_off_t>::max();
  return std::nullopt;
}

class WebhookChannel final : public Channel {
 public:
  WebhookChannel(WebhookConfig config, Secrets secrets, Transfers& transfers)
      : config_(std::move(config)),
        secrets_(std::move(secrets)),
        guard_(config_.allow_private),
        transfers_(transfers) {}

  void start(const Fire& fire, DeliveryDone done) override {
    if (!fire.target) {
      done(not_sent(
          "no address: the reminder has no target and contacts has no webhook address for " +
          fire.entity_type + "/" + fire.entity_id));
      return;
    }
    auto transfer = std::make_shared<HttpTransfer>();
    transfer->connect.guard = &guard_;
    const std::string key = fire.idempotency_key();
    transfer->request = webhook_request(fire, key, secrets_);
    const WebhookRequest& request = transfer->request;
    if (!request.error.empty()) {
      done(not_sent(request.error));
      return;
    }
    const std::string& url = request.url;
    std::string scheme;
    std::string parse_error;
    transfer->hidden = secret_parts(url, scheme, parse_error);
    if (!parse_error.empty()) {
      done(not_sent("invalid webhook URL: " + parse_error));
      return;
    }
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme != "http" && scheme != "https") {
      done(not_sent("unsupported webhook URL scheme \"" + scheme + "\" (only http and https)"));
      return;
    }
    transfer->hidden.push_back(url);
    for (const std::string& secret : request.secrets) transfer->hidden.push_back(secret);
    transfer->echoes = response_echoes(request);
    for (const std::string& echo : transfer->echoes)
      transfer->keep = std::max(transfer->keep, kMaxResponseBytes + echo.size());
    // The signature covers the bytes sent: the body, or nothing for GET and DELETE. An empty body
    // has no type: "Content-Type:" stops libcurl adding its form type to POST data.
    bool built =
        (!request.body || add_header(*transfer, request.content_type.empty()
                                                    ? std::string("Content-Type:")
                                                    : "Content-Type: " + request.content_type)) &&
        add_header(*transfer, "Idempotency-Key: " + key) &&
        add_header(*transfer, "Nudge-Attempt: " + std::to_string(fire.attempt)) &&
        add_header(*transfer, "Expect:") &&
        (config_.secret.empty() ||
         add_header(*transfer, "Nudge-Signature: " + webhook_signature(config_.secret, unix_now(),
                                                                       request.body.value_or(""))));
    for (const std::string& line : request.headers) built = built && add_header(*transfer, line);
    if (!built) {
      done(not_sent("out of memory building the webhook request"));
      return;
    }

    start_curl_delivery(
        transfers_, std::move(done), [&](CURL* easy) { return configure(easy, url, *transfer); },
        [transfer, timeout_ms = transfer->request.timeout_ms.value_or(config_.timeout_ms),
         short_own = transfer->request.timeout_ms.value_or(config_.connect_timeout_ms) <
                     config_.connect_timeout_ms](CURLcode result, CURL* handle) {
          Delivery delivery = outcome(*transfer, timeout_ms, result, handle);
          // A reminder's own wait shorter than a connection may take tells nothing of its host:
          // anyone could open a healthy host's breaker with it (explore29a LOW 6).
          if (short_own && result == CURLE_OPERATION_TIMEDOUT && delivery.counts_for_host) {
            delivery.counts_for_host = false;
            delivery.unreachable = false;  // nor is it free: the reminder chose to wait too little
            delivery.error +=
                " (the reminder's own timeout_ms is below [webhook] "
                "connect_timeout_ms: the host's circuit breaker does not count it)";
          }
          return delivery;
        },
        [&](std::string text) { return mask_secrets(text, transfer->hidden); }, &transfer->connect);
  }

 private:
  static std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  static bool add_header(HttpTransfer& transfer, const std::string& line) {
    curl_slist* list = curl_slist_append(transfer.headers, line.c_str());
    if (list == nullptr) return false;
    transfer.headers = list;
    return true;
  }

  CURLcode configure(CURL* easy, const std::string& url, HttpTransfer& transfer) const {
    const auto timeout = [](int ms) { return static_cast<long>(std::max(ms, 0)); };
    for (const CURLcode rc : {
             curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.error),
             curl_easy_setopt(easy, CURLOPT_URL, url.c_str()),
             curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"),
             curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"),
             curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L),
             curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L),
             curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout(config_.connect_timeout_ms)),
             curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                              timeout(transfer.request.timeout_ms.value_or(config_.timeout_ms))),
             curl_easy_setopt(easy, CURLOPT_USERAGENT, "nudge-worker"),
             // An idle connection kept past 30 s is not reused: a middlebox that forgets idle
             // connections silently (no reset) would cost a timeout and an attempt (libcurl's
             // own limit is 118 s; explore31a F4).
             curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, 30L),
             curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer.headers),
             curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &keep_start),
             curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer),
         }) {
      if (rc != CURLE_OK) return rc;
    }
    return configure_method(easy, transfer.request);
  }

  // A body goes as POST data (under the request's own method, if not POST); a request without
  // one is a GET, or a DELETE with no body.
  static CURLcode configure_method(CURL* easy, const WebhookRequest& request) {
    if (!request.body) {
      if (request.method == "GET") return curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
      return curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    for (const CURLcode rc : {
             curl_easy_setopt(easy, CURLOPT_POST, 1L),
             curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body->data()),
             curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                              static_cast<curl_off_t>(request.body->size())),
             curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST,
                              request.method == "POST" ? nullptr : request.method.c_str()),
         }) {
      if (rc != CURLE_OK) return rc;
    }
    return CURLE_OK;
  }

  static Delivery outcome(const HttpTransfer& transfer, int timeout_ms, CURLcode result,
                          CURL* handle) {
    Delivery delivery;
    delivery.response = masked_response(transfer);
    if (result != CURLE_OK && !transfer.connect.refused.empty() && transfer.connect.opened == 0) {
      delivery.error = mask_secrets(ssrf_refused(transfer.connect.refused), transfer.hidden);
      delivery.counts_for_host = false;  // every address was refused: the host was never asked
      // A literal address is refused at every attempt: the occurrence ends now (one created over
      // SQL, which does not know [webhook] allow_private, was tried 3 times). Looked at only
      // here, off the path of deliveries that connect.
      const auto host = url_host(transfer.request.url);
      if (host && transfer.connect.guard->literal_refusal(*host)) {
        delivery.error += " (a literal address: another attempt cannot change that)";
        delivery.final = true;
      }
      return delivery;
    }
    long code = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
    if (result == CURLE_WRITE_ERROR && transfer.stopped) result = CURLE_OK;  // read enough
    if (result != CURLE_OK && code >= 200 && code < 300) {
      // The receiver said 2xx, then its answer's body broke off: it took the delivery.
      delivery.status_code = static_cast<int>(code);
      delivery.delivered = true;
      return delivery;
    }
    if (result != CURLE_OK) {
      if (code != 0) delivery.status_code = static_cast<int>(code);
      std::string error = curl_error_text(result, transfer.error);
      // An allowed address was tried and failed: that is the error; a refused one is a note.
      if (!transfer.connect.refused.empty()) error += "; " + ssrf_refused(transfer.connect.refused);
      if (const auto late = late_timeout(result, timeout_ms, handle)) {
        error += *late;
        delivery.counts_for_host = false;
      } else {
        delivery.unreachable = never_connected(result, handle);
      }
      delivery.error = mask_secrets(error, transfer.hidden);
      return delivery;
    }
    if (code == 0) {
      delivery.error = "no HTTP status in the response";
      return delivery;
    }
    delivery.status_code = static_cast<int>(code);
    if (code >= 200 && code < 300) {
      delivery.delivered = true;
    } else if (code >= 300 && code < 400) {
      // Where it points: the target to correct.
      const std::string location = response_header(handle, "Location");
      delivery.error = "HTTP " + std::to_string(code) + " (redirects are not followed" +
                       (location.empty() ? "" : "; Location: " + shown_location(location)) + ")";
      delivery.error = mask_secrets(delivery.error, transfer.hidden);
    } else {
      delivery.error = "HTTP " + std::to_string(code);
      if (code == 429 || code == 503) delivery.error += waited_for(delivery, handle);
    }
    return delivery;
  }

  // A Retry-After the next attempt waits for, said in the error; one that cannot be read, or is
  // past, said too (explore31a F3: "HTTP 429" alone, the receiver's "soon" dropped unsaid).
  static std::string waited_for(Delivery& delivery, CURL* handle) {
    constexpr curl_off_t kYear = 31622400;  // the finish caps it at [retry] max_delay_ms anyway
    if (const auto wait = retry_after(handle)) {
      delivery.retry_after_seconds = static_cast<int>(std::min(*wait, kYear));
      return " (Retry-After: " + std::to_string(*delivery.retry_after_seconds) + " s" +
             (*wait > kYear ? ", taken as a year" : "") + ")";
    }
    const std::string asked = response_header(handle, "Retry-After");
    if (asked.empty()) return "";
    return " (Retry-After \"" + asked.substr(0, 64) +
           "\" not waited for: neither seconds nor a date to come)";
  }

  // Where a redirect points, as its scheme and host only: its path, query and user may hold a
  // token (a secret target redirected to itself kept its path's token in the error: explore31d).
  static std::string shown_location(const std::string& location) {
    const auto scheme_end = location.find("://");
    if (scheme_end == std::string::npos) return "a path on the same host";
    const auto host_start = scheme_end + 3;
    const auto host_end = location.find_first_of("/?#", host_start);
    std::string authority = location.substr(host_start, host_end - host_start);
    if (const auto at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
    return location.substr(0, host_start).substr(0, 16) + authority.substr(0, 200);
  }

  // Whether the host could not be reached, so that the request never left: its name did not
  // resolve, or no connection was made (refused, or not in time). A TLS handshake that failed
  // is not: the host answered, and its certificate or settings will not change by waiting.
  static bool never_connected(CURLcode result, CURL* handle) {
    if (result == CURLE_COULDNT_RESOLVE_HOST || result == CURLE_COULDNT_CONNECT) return true;
    curl_off_t connected_us = 0;
    return result == CURLE_OPERATION_TIMEDOUT &&
           curl_easy_getinfo(handle, CURLINFO_CONNECT_TIME_T, &connected_us) == CURLE_OK &&
           connected_us == 0;
  }

  // libcurl checks a transfer's timeout before it reads: a worker stopped (SIGSTOP, a paused
  // VM) while answers arrived finds its transfers timed out when it runs again, answered or
  // not. A timeout seen well after it was due says that of this worker, not of the receiver.
  static std::optional<std::string> late_timeout(CURLcode result, int timeout_ms, CURL* handle) {
    curl_off_t total_us = 0;
    if (result != CURLE_OPERATION_TIMEDOUT ||
        curl_easy_getinfo(handle, CURLINFO_TOTAL_TIME_T, &total_us) != CURLE_OK)
      return std::nullopt;
    const long long total_ms = total_us / 1000;
    const long long late_after_ms = timeout_ms + std::max(2000, timeout_ms / 5);
    if (total_ms <= late_after_ms) return std::nullopt;
    char note[200];
    std::snprintf(note, sizeof note,
                  " (seen at %.1f s, %.1f s after [webhook] timeout_ms: this worker was paused or "
                  "starved meanwhile, so the host's circuit breaker does not count it)",
                  static_cast<double>(total_ms) / 1000,
                  static_cast<double>(total_ms - timeout_ms) / 1000);
    return std::string(note);
  }

  WebhookConfig config_;
  Secrets secrets_;
  AddressGuard guard_;
  Transfers& transfers_;
};

}  // namespace

std::unique_ptr<Channel> make_webhook_channel(const WebhookConfig& config, const Secrets& secrets,
                                              Transfers& transfers) {
  return std::make_unique<WebhookChannel>(config, secrets, transfers);
}

}  // namespace nudge
