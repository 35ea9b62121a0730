// The `email` channel: one plain-text message per fire, sent through the configured SMTP relay
// with libcurl, run concurrently with every other transfer on the claim loop's Transfers.
//
// The message is 7-bit ASCII throughout: the subject is RFC 2047-encoded when it is not plain
// ASCII and the body is base64, so no byte the payload holds can end a header, start a new one
// or end the SMTP DATA. Addresses are checked before anything is sent.

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "channel.hpp"
#include "curl_delivery.hpp"
#include "nudge/secrets.hpp"
#include "nudge/utf8.hpp"
#include "transfers.hpp"

namespace nudge {

namespace {

constexpr std::size_t kMaxAddressBytes = 254;

// Why `address` cannot be used as a bare addr-spec in a header and an SMTP command, or nullopt.
// Deliberately strict: dot-atom local parts and host names only (no quoting, no comments, no
// domain literals, no non-ASCII), so nothing it accepts can inject a header or a command.
std::optional<std::string> address_problem(std::string_view address) {
  if (address.empty()) return "it is empty";
  if (address.size() > kMaxAddressBytes) return "it is longer than 254 characters";
  for (const char c : address) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r' || c == '\n') return "it contains a line break";
    if (c == ' ' || c == '\t') return "it contains white space";
    if (u < 0x20 || u == 0x7f) return "it contains a control character";
    if (u >= 0x80) return "it contains non-ASCII characters";
    if (std::strchr("<>()[]\\,;:\"", c) != nullptr) return std::string("it contains '") + c + "'";
  }
  const auto at = address.find('@');
  if (at == std::string_view::npos) return "it has no '@'";
  if (address.find('@', at + 1) != std::string_view::npos) return "it has more than one '@'";
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  if (local.empty()) return "it has nothing before the '@'";
  if (domain.empty()) return "it has no domain after the '@'";
  for (const std::string_view part : {local, domain}) {
    if (part.front() == '.' || part.back() == '.' || part.find("..") != std::string_view::npos)
      return "it has a misplaced '.'";
  }
  return std::nullopt;
}

// `text` as a JSON string literal (escaped, so safe in a log line), cut to a readable length.
std::string shown_quoted(std::string_view text) {
  constexpr std::size_t kShown = 100;
  std::string shown(text.substr(0, kShown));
  if (text.size() > kShown) shown += "...";
  return nlohmann::json(shown).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

// A message is far below the 2 GiB an int counts (payloads are at most 64 KiB).
std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

// A text/plain body in canonical form (every line break CRLF), base64 in lines of 76.
std::string base64_body(std::string_view text) {
  std::string canonical;
  canonical.reserve(text.size() + text.size() / 16);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      canonical += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (text[i] == '\n') {
      canonical += "\r\n";
    } else {
      canonical += text[i];
    }
  }
  const std::string encoded = base64(canonical);
  std::string out;
  out.reserve(encoded.size() + encoded.size() / 38 + 2);
  for (std::size_t i = 0; i < encoded.size(); i += 76) {
    out.append(encoded, i, 76);
    out += "\r\n";
  }
  return out;
}

// One line of header text: line breaks, tabs and other control characters become spaces, runs
// of white space become one, and the ends are trimmed.
std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// `Subject: ...` with its CRLF, from text already made one line: plain ASCII folded at spaces
// to lines of at most 78 characters, anything else as RFC 2047 encoded words (UTF-8, base64) of
// at most 76 characters a line, never splitting a character.
std::string subject_header(const std::string& subject) {
  static constexpr std::string_view kName = "Subject: ";
  const bool plain =
      std::all_of(subject.begin(), subject.end(), [](char c) { return c >= 0x20 && c != 0x7f; }) &&
      subject.find("=?") == std::string::npos && subject.size() <= 900;
  std::string out(kName);
  if (plain) {
    std::size_t line_start = 0;
    std::size_t min_break = kName.size();  // a break must leave text on the line before it
    for (const char c : subject) {
      out += c;
      if (out.size() - line_start <= 78) continue;
      const auto space = out.rfind(' ');
      if (space == std::string::npos || space <= line_start + min_break) continue;
      out.insert(space, "\r\n");
      line_start = space + 2;
      min_break = 1;
    }
    return out + "\r\n";
  }
  // Encoded words: "=?UTF-8?B?" + base64 + "?=". The first shares its line with the name.
  std::size_t budget = 39;  // bytes of text: 9 + 12 + 52 <= 76
  std::size_t i = 0;
  bool first = true;
  while (i < subject.size()) {
    // Never split a character; always take at least a byte, so invalid text still ends.
    const std::size_t end =
        i + std::max<std::size_t>(1, utf8::cut(std::string_view(subject).substr(i), budget).size());
    if (!first) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(std::string_view(subject).substr(i, end - i)) + "?=";
    i = end;
    first = false;
    budget = 45;  // " " + 12 + 60 <= 76
  }
  return out + "\r\n";
}

// The idempotency key as the left part of a Message-ID (RFC 5322 dot-atom-text): the colons
// of the time go (ISO 8601 basic format); anything else outside atext becomes '_'. The right
// part is the sender's domain, so two installations (ids restart at 1) do not collide.
std::string message_id(const std::string& key, const std::string& from) {
  static constexpr std::string_view kAtextSpecials = "!#$%&'*+-/=?^_`{|}~";
  std::string out;
  for (const char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ':') continue;
    if (c == '.') {
      out += out.empty() || out.back() == '.' ? '_' : '.';
    } else if (u < 0x80 && (std::isalnum(u) || kAtextSpecials.find(c) != std::string_view::npos)) {
      out += c;
    } else {
      out += '_';
    }
  }
  if (out.empty()) out = "_";
  if (out.back() == '.') out.back() = '_';
  const auto at = from.rfind('@');
  const std::string domain = at == std::string::npos ? "nudge" : from.substr(at + 1);
  return "<" + out + "@" + domain + ">";
}

// Printable ASCII only, for header values built from database text.
std::string header_safe(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) c = '?';
  }
  return out;
}

// Now as an RFC 5322 date-time in UTC, in English whatever the locale.
std::string rfc5322_now() {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string default_subject(const Fire& fire) {
  return "Reminder: " + fire.event_type + " for " + fire.entity_type + " " + fire.entity_id;
}

std::string default_body(const Fire& fire, const std::string& key, const nlohmann::json& payload) {
  std::string text = default_subject(fire) + "\n\n";
  text += "Scheduled for: " + rfc3339_from_pg(fire.scheduled_for) + "\n";
  text += "Attempt: " + std::to_string(fire.attempt);
  if (fire.max_attempts > 0) text += " of " + std::to_string(fire.max_attempts);
  text += "\nReminder id: " + std::to_string(fire.id) + "\n";
  text += "Idempotency key: " + key + "\n\nPayload:\n";
  text += payload.is_discarded()
              ? fire.payload_json
              : payload.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  text += "\n";
  return text;
}

// Everything one transfer needs until it ends; libcurl keeps pointers into it.
struct Transfer {
  std::string message;
  std::size_t sent = 0;
  curl_slist* recipients = nullptr;
  std::string reply;    // the final line of the server's latest reply
  std::string partial;  // a reply line not yet complete
  char error[CURL_ERROR_SIZE] = {};
  std::vector<std::string> hidden;  // what no error may show (a copy: Transfers may outlive us)

  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer() { curl_slist_free_all(recipients); }
};

std::size_t read_message(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const std::size_t n = std::min(size * count, transfer.message.size() - transfer.sent);
  std::memcpy(buffer, transfer.message.data() + transfer.sent, n);
  transfer.sent += n;
  return n;
}

// libcurl hands every SMTP reply line to the header callback; keep the last reply's final line
// ("250 2.0.0 Ok: queued", "550 no such user").
std::size_t keep_reply(char* data, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  if (transfer.partial.size() < kMaxResponseBytes)
    transfer.partial.append(data, std::min(bytes, kMaxResponseBytes - transfer.partial.size()));
  if (bytes == 0 || data[bytes - 1] != '\n') return bytes;
  std::string line = std::move(transfer.partial);
  transfer.partial.clear();
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  // A multi-line reply ends with "ddd " (or a bare "ddd"); "ddd-" lines continue it. The 221
  // of the QUIT that ends a failed conversation would hide the reply that failed it: skip it.
  if (line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
      std::isdigit(static_cast<unsigned char>(line[1])) &&
      std::isdigit(static_cast<unsigned char>(line[2])) && (line.size() == 3 || line[3] == ' ') &&
      line.compare(0, 3, "221") != 0)
    transfer.reply = header_safe(line);
  return bytes;
}

class EmailChannel final : public Channel {
 public:
  EmailChannel(EmailConfig config, Transfers& transfers)
      : config_(std::move(config)), transfers_(transfers) {
    inspect_url();
    if (const auto problem = address_problem(config_.from))
      from_problem_ = "email.from is not a plausible email address: " + *problem;
  }

  void start(const Fire& fire, DeliveryDone done) override {
    if (!fire.target) {
      done({false,
            "no address: the reminder has no target and contacts has no email address for " +
                fire.entity_type + "/" + fire.entity_id,
            std::nullopt,
            {}});
      return;
    }
    const std::string& to = *fire.target;
    if (const auto problem = address_problem(to)) {
      done({false,
            "not sent: the target " + shown_quoted(to) + " is not a plausible email address (" +
                *problem + ")",
            std::nullopt,
            {}});
      return;
    }
    if (!url_problem_.empty() || !from_problem_.empty()) {
      done({false, url_problem_.empty() ? from_problem_ : url_problem_, std::nullopt, {}});
      return;
    }

    auto transfer = std::make_shared<Transfer>();
    transfer->hidden = hidden_;
    transfer->message = message(fire, to);
    if (curl_slist* list = curl_slist_append(nullptr, ("<" + to + ">").c_str())) {
      transfer->recipients = list;
    } else {
      done({false, "out of memory building the email", std::nullopt, {}});
      return;
    }

    start_curl_delivery(
        transfers_, std::move(done), [&](CURL* easy) { return configure(easy, *transfer); },
        [transfer](CURLcode result, CURL* handle) { return outcome(*transfer, result, handle); },
        [this](std::string text) { return mask_secrets(text, hidden_); });
  }

 private:
  // Reads the scheme (STARTTLS is tried on smtp://) and the parts of the URL no error may show.
  void inspect_url() {
    hidden_.push_back(config_.smtp_url);
    CURLU* u = curl_url();
    if (u == nullptr) {
      url_problem_ = "email.smtp_url: out of memory";
      return;
    }
    if (const CURLUcode rc = curl_url_set(u, CURLUPART_URL, config_.smtp_url.c_str(), 0);
        rc != CURLUE_OK) {
      url_problem_ = std::string("email.smtp_url is not a valid URL: ") + curl_url_strerror(rc);
    } else {
      char* part = nullptr;
      if (curl_url_get(u, CURLUPART_SCHEME, &part, 0) == CURLUE_OK && part != nullptr)
        scheme_ = part;
      curl_free(part);
      std::transform(scheme_.begin(), scheme_.end(), scheme_.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (scheme_ != "smtp" && scheme_ != "smtps")
        url_problem_ = "email.smtp_url must start with smtp:// or smtps://";
      for (const unsigned int flags : {0u, static_cast<unsigned int>(CURLU_URLDECODE)}) {
        part = nullptr;
        if (curl_url_get(u, CURLUPART_PASSWORD, &part, flags) == CURLUE_OK && part != nullptr)
          hidden_.emplace_back(part);
        curl_free(part);
      }
    }
    curl_url_cleanup(u);
  }

  std::string message(const Fire& fire, const std::string& to) const {
    const std::string key = fire.idempotency_key();
    nlohmann::json payload = nlohmann::json::parse(fire.payload_json, nullptr, false);
    std::optional<std::string> subject;
    std::optional<std::string> body;
    if (payload.is_object()) {
      if (const auto it = payload.find("subject"); it != payload.end() && it->is_string())
        subject = it->get<std::string>();
      if (const auto it = payload.find("body"); it != payload.end() && it->is_string())
        body = it->get<std::string>();
    }

    std::string text;
    text += "Date: " + rfc5322_now() + "\r\n";
    text += "From: " + config_.from + "\r\n";
    text += "To: " + to + "\r\n";
    text += subject_header(one_line(subject ? *subject : default_subject(fire)));
    text += "Message-ID: " + message_id(key, config_.from) + "\r\n";
    text += "MIME-Version: 1.0\r\n";
    text += "Content-Type: text/plain; charset=utf-8\r\n";
    text += "Content-Transfer-Encoding: base64\r\n";
    text += "Auto-Submitted: auto-generated\r\n";  // RFC 3834: no vacation replies, please
    text += "X-Nudge-Reminder-Id: " + std::to_string(fire.id) + "\r\n";
    text += "X-Nudge-Attempt: " + std::to_string(fire.attempt) + "\r\n";
    text += "Idempotency-Key: " + header_safe(key) + "\r\n";
    text += "\r\n";
    text += base64_body(body ? *body : default_body(fire, key, payload));
    return text;
  }

  CURLcode configure(CURL* easy, Transfer& transfer) const {
    const long timeout = std::max(config_.timeout_ms, 0);
    const std::string mail_from = "<" + config_.from + ">";
    for (const CURLcode rc : {
             curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.error),
             curl_easy_setopt(easy, CURLOPT_URL, config_.smtp_url.c_str()),
             curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps"),
             curl_easy_setopt(
                 easy, CURLOPT_USE_SSL,
                 static_cast<long>(scheme_ == "smtp" ? CURLUSESSL_TRY : CURLUSESSL_NONE)),
             curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L),
             curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout, 10000L)),
             curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout),
             curl_easy_setopt(easy, CURLOPT_MAIL_FROM, mail_from.c_str()),  // libcurl copies it
             curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, transfer.recipients),
             curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L),
             curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE,
                              static_cast<curl_off_t>(transfer.message.size())),
             curl_easy_setopt(easy, CURLOPT_READFUNCTION, &read_message),
             curl_easy_setopt(easy, CURLOPT_READDATA, &transfer),
             curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &keep_reply),
             curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer),
         }) {
      if (rc != CURLE_OK) return rc;
    }
    return CURLE_OK;
  }

  static Delivery outcome(const Transfer& transfer, CURLcode result, CURL* handle) {
    Delivery delivery;
    delivery.response = mask_secrets(transfer.reply, transfer.hidden);
    long code = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
    if (code > 0) delivery.status_code = static_cast<int>(code);
    if (result == CURLE_OK) {
      delivery.delivered = true;
      return delivery;
    }
    if (result == CURLE_ABORTED_BY_CALLBACK) {  // Transfers::abort_all(): the worker is stopping
      delivery.error = "SMTP: the transfer was aborted before it ended";
      return delivery;
    }
    std::string error = std::string("SMTP: ") + curl_easy_strerror(result);
    std::string detail = transfer.error;
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
    if (!detail.empty() && detail != curl_easy_strerror(result)) error += ": " + detail;
    if (!transfer.reply.empty() && code >= 400)
      error += " (server said \"" + transfer.reply + "\")";
    delivery.error = mask_secrets(error, transfer.hidden);
    return delivery;
  }

  EmailConfig config_;
  Transfers& transfers_;
  std::string scheme_;
  std::string url_problem_;
  std::string from_problem_;
  std::vector<std::string> hidden_;  // what no error may show: the URL and its password
};

}  // namespace

std::unique_ptr<Channel> make_email_channel(const EmailConfig& config, Transfers& transfers) {
  return std::make_unique<EmailChannel>(config, transfers);
}

}  // namespace nudge
