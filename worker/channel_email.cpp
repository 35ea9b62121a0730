// The `email` channel: one plain-text message per fire (email_message.hpp builds it), sent
// through the configured SMTP relay with libcurl, each conversation on a lane of the claim
// loop's Transfers (a thread that keeps its connection: Transfers::spawn). Addresses are checked
// before anything is sent.

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "channel.hpp"
#include "curl_delivery.hpp"
#include "email_message.hpp"
#include "nudge/secrets.hpp"
#include "transfers.hpp"

namespace nudge {

namespace {

constexpr int kTemporaryRefusalWaitSeconds = 300;

// `text` as a JSON string literal (escaped, so safe in a log line), cut to a readable length.
std::string shown_quoted(std::string_view text) {
  constexpr std::size_t kShown = 100;
  std::string shown(text.substr(0, kShown));
  if (text.size() > kShown) shown += "...";
  return nlohmann::json(shown).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

// Everything one transfer needs until it ends; libcurl keeps pointers into it.
struct SmtpTransfer {
  std::string message;
  std::size_t sent = 0;
  curl_slist* recipients = nullptr;
  std::string reply;    // the server's latest whole reply, its lines joined by spaces
  std::string lines;    // the lines of a multi-line reply so far ("550-5.1.1 ...")
  std::string partial;  // a reply line not yet complete
  char error[CURL_ERROR_SIZE] = {};
  std::vector<std::string> hidden;  // what no error may show (a copy: Transfers may outlive us)
  // A login must be used, not skipped: libcurl sends without one when the relay offers no AUTH.
  bool logs_in = false;
  int replies = 0;             // final reply lines heard in this transfer
  bool greeted = false;        // this transfer opened the connection (its first reply: 220)
  std::string command;         // the verb of the last command sent (MAIL, RCPT, ...), if any
  bool answered = false;       // whether that command (before any, the greeting) had its reply
  bool authenticated = false;  // a 235 was heard (a reused connection logged in before)
  bool stopped_unauthenticated = false;

  SmtpTransfer() = default;
  SmtpTransfer(const SmtpTransfer&) = delete;
  SmtpTransfer& operator=(const SmtpTransfer&) = delete;
  ~SmtpTransfer() { curl_slist_free_all(recipients); }
};

std::size_t read_message(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<SmtpTransfer*>(user);
  const std::size_t n = std::min(size * count, transfer.message.size() - transfer.sent);
  std::memcpy(buffer, transfer.message.data() + transfer.sent, n);
  transfer.sent += n;
  return n;
}

// libcurl hands every SMTP reply line to the header callback; keep the last reply, every line
// ("250 2.0.0 Ok: queued", "550-5.1.1 The account does not exist. 550 5.1.1 https://...": the
// first lines often say why), and stop a conversation that should have logged in and did not.
std::size_t keep_reply(char* data, std::size_t size, std::size_t count, void* user) {
  auto& transfer = *static_cast<SmtpTransfer*>(user);
  const std::size_t bytes = size * count;
  if (transfer.partial.size() < kMaxResponseBytes)
    transfer.partial.append(data, std::min(bytes, kMaxResponseBytes - transfer.partial.size()));
  if (bytes == 0 || data[bytes - 1] != '\n') return bytes;
  std::string line = std::move(transfer.partial);
  transfer.partial.clear();
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  // A multi-line reply ends with "ddd " (or a bare "ddd"); "ddd-" lines continue it. The 221
  // of the QUIT that ends a failed conversation would hide the reply that failed it: skip it.
  const bool coded = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                     std::isdigit(static_cast<unsigned char>(line[1])) &&
                     std::isdigit(static_cast<unsigned char>(line[2]));
  if (coded && line.size() > 3 && line[3] == '-') {
    if (transfer.lines.size() < kMaxResponseBytes) transfer.lines += header_safe(line) + " ";
    return bytes;
  }
  if (coded && (line.size() == 3 || line[3] == ' ') && line.compare(0, 3, "221") != 0) {
    transfer.reply = std::move(transfer.lines) + header_safe(line);
    transfer.lines.clear();
    const std::string_view code = std::string_view(line).substr(0, 3);
    if (transfer.replies++ == 0 && code == "220") transfer.greeted = true;
    transfer.answered = true;
    if (code == "235") transfer.authenticated = true;
    // The relay's go-ahead for the message on a connection that never logged in: stop before
    // a byte of it is sent (returning less than `bytes` ends the transfer).
    if (code == "354" && transfer.logs_in && transfer.greeted && !transfer.authenticated) {
      transfer.stopped_unauthenticated = true;
      return 0;
    }
  }
  return bytes;
}

// libcurl hands every command it sends to the debug callback: keep the last one's verb, so that
// a hang-up is known by the command it left unanswered.
int note_command(CURL*, curl_infotype type, char* data, std::size_t size, void* user) {
  if (type != CURLINFO_HEADER_OUT) return 0;
  auto& transfer = *static_cast<SmtpTransfer*>(user);
  std::string verb;
  for (std::size_t i = 0; i < size && i < 8 && std::isalpha(static_cast<unsigned char>(data[i]));
       ++i)
    verb += static_cast<char>(std::toupper(static_cast<unsigned char>(data[i])));
  // The QUIT that closes a failed conversation is not what failed it.
  if (verb == "QUIT") return 0;
  transfer.command = std::move(verb);
  transfer.answered = false;
  return 0;
}

class EmailChannel final : public Channel {
 public:
  EmailChannel(EmailConfig config, Transfers& transfers)
      : config_(std::move(config)), transfers_(transfers) {
    inspect_url();
    if (const auto problem = email_address_problem(config_.from))
      from_problem_ = "email.from is not a plausible email address: " + *problem;
  }

  void start(const Fire& fire, DeliveryDone done) override {
    if (!fire.target) {
      done(
          not_sent("no address: the reminder has no target and contacts has no email address for " +
                   fire.entity_type + "/" + fire.entity_id));
      return;
    }
    const std::string& to = *fire.target;
    if (const auto problem = email_address_problem(to)) {
      done(not_sent("not sent: the target " + shown_quoted(to) +
                    " is not a plausible email address (" + *problem + ")"));
      return;
    }
    if (!url_problem_.empty() || !from_problem_.empty()) {
      done(not_sent(url_problem_.empty() ? from_problem_ : url_problem_));
      return;
    }

    auto transfer = std::make_shared<SmtpTransfer>();
    transfer->hidden = hidden_;
    transfer->logs_in = logs_in_;
    transfer->message = email_message(fire, config_.from, to, std::chrono::system_clock::now());
    if (curl_slist* list = curl_slist_append(nullptr, ("<" + to + ">").c_str())) {
      transfer->recipients = list;
    } else {
      done(not_sent("out of memory building the email"));
      return;
    }

    // On a lane of its own: libcurl waits for the reply to the end of data inside the transfer,
    // so one slow relay held back every delivery of the loop (emails failed on their timeouts
    // while the relay accepted them, one at a time, and were sent again).
    start_curl_delivery_on_lane(
        transfers_, std::move(done), [&](CURL* easy) { return configure(easy, *transfer); },
        [transfer](CURLcode result, CURL* handle) { return outcome(*transfer, result, handle); },
        [hidden = hidden_](std::string text) { return mask_secrets(text, hidden); });
  }

 private:
  // Reads the scheme (STARTTLS is tried on smtp://, and required when the URL logs in), whether
  // the URL carries a user or password, and the parts of the URL no error may show.
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
      for (const CURLUPart login : {CURLUPART_USER, CURLUPART_PASSWORD}) {
        part = nullptr;
        if (curl_url_get(u, login, &part, 0) == CURLUE_OK && part != nullptr && *part != '\0')
          logs_in_ = true;
        curl_free(part);
      }
      for (const unsigned int flags : {0u, static_cast<unsigned int>(CURLU_URLDECODE)}) {
        part = nullptr;
        if (curl_url_get(u, CURLUPART_PASSWORD, &part, flags) == CURLUE_OK && part != nullptr)
          hidden_.emplace_back(part);
        curl_free(part);
      }
    }
    curl_url_cleanup(u);
  }

  CURLcode configure(CURL* easy, SmtpTransfer& transfer) const {
    const long timeout = std::max(config_.timeout_ms, 0);
    const std::string mail_from = "<" + config_.from + ">";
    for (const CURLcode rc : {
             curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.error),
             curl_easy_setopt(easy, CURLOPT_URL, config_.smtp_url.c_str()),
             curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps"),
             curl_easy_setopt(easy, CURLOPT_USE_SSL, static_cast<long>(tls_level())),
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
             // Verbose only to have the commands: note_command prints nothing.
             curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, &note_command),
             curl_easy_setopt(easy, CURLOPT_DEBUGDATA, &transfer),
             curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L),
         }) {
      if (rc != CURLE_OK) return rc;
    }
    if (!config_.ca_file.empty())
      return curl_easy_setopt(easy, CURLOPT_CAINFO, config_.ca_file.c_str());
    return CURLE_OK;
  }

  // A password never crosses the network in clear: a relay that offers no STARTTLS (or a path
  // that strips it) fails the attempt instead of hearing the login.
  curl_usessl tls_level() const {
    if (scheme_ != "smtp") return CURLUSESSL_NONE;
    return logs_in_ ? CURLUSESSL_ALL : CURLUSESSL_TRY;
  }

  static Delivery outcome(const SmtpTransfer& transfer, CURLcode result, CURL* handle) {
    Delivery delivery;
    delivery.response = mask_secrets(transfer.reply, transfer.hidden);
    long code = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
    if (code > 0) delivery.status_code = static_cast<int>(code);
    if (result == CURLE_OK) {
      delivery.delivered = true;
      return delivery;
    }
    // A failure with no refusal (a timeout, a hang-up) has no reply that failed it: the last
    // reply heard ("250", "354 end with .") would read as its cause.
    if (code < 400) {
      delivery.status_code.reset();
      delivery.response.clear();
    }
    if (result == CURLE_ABORTED_BY_CALLBACK) {  // Transfers::abort_all(): the worker is stopping
      delivery.error = "SMTP: the transfer was aborted before it ended";
      return delivery;
    }
    long connects = 0;  // none: the transfer reused a kept connection
    curl_easy_getinfo(handle, CURLINFO_NUM_CONNECTS, &connects);
    delivery.relay_failure = relay_failure(transfer, result, code, connects == 0);
    if (transfer.stopped_unauthenticated) {
      delivery.error =
          "SMTP: the relay offered no AUTH, and smtp_url logs in: the message was not sent "
          "without the login (take the login out of smtp_url to send without one)";
      return delivery;
    }
    if (result == CURLE_USE_SSL_FAILED) {
      delivery.error =
          "SMTP: the relay offered no STARTTLS, and smtp_url logs in, which Nudge does only over "
          "TLS (use smtps:// or a relay that offers STARTTLS)";
      return delivery;
    }
    std::string error = "SMTP: " + failure_text(transfer, result);
    if (!transfer.reply.empty() && code >= 400)
      error += " (server said \"" + transfer.reply + "\")";
    if (delivery.relay_failure == Delivery::RelayFailure::none) {
      // A temporary refusal of this message (greylisting's 451, a full mailbox's 452) is asked
      // again minutes later, not within the seconds of the usual backoff.
      if (code >= 400 && code < 500) {
        delivery.retry_after_seconds = kTemporaryRefusalWaitSeconds;
        error += " (a temporary refusal)";
      }
      // A permanent one (550 user unknown, 554 refused after the data): the relay would refuse
      // the same message again.
      if (code >= 500) {
        delivery.final = true;
        error += " (a permanent refusal: not tried again)";
      }
    }
    delivery.error = mask_secrets(error, transfer.hidden);
    return delivery;
  }

  // Which command of the conversation a refusal answered, from libcurl's words for it.
  enum class Stage { before_message, recipient, data, end_of_data };
  static Stage refused_at(const SmtpTransfer& transfer, CURLcode result) {
    const std::string_view said = transfer.error;
    if (said.starts_with("RCPT failed")) return Stage::recipient;
    if (said.starts_with("DATA failed")) return Stage::data;
    if (result == CURLE_WEIRD_SERVER_REPLY && transfer.sent > 0 &&
        transfer.sent == transfer.message.size())
      return Stage::end_of_data;
    return Stage::before_message;
  }

  // Whether the relay, not the message, ended the attempt, without taking the message.
  static Delivery::RelayFailure relay_failure(const SmtpTransfer& transfer, CURLcode result,
                                              long code, bool reused) {
    using F = Delivery::RelayFailure;
    // The relay hung up without a word, the message's data not begun.
    const bool hung_up =
        !transfer.answered && transfer.sent == 0 &&
        (result == CURLE_RECV_ERROR || result == CURLE_SEND_ERROR || result == CURLE_GOT_NOTHING);
    // A reused connection's first reply a 421: the relay closed it while it was idle, and its
    // parting words were read as the answer to this message's first command. Or no reply at
    // all: it closed it without a word (a relay restarting, a proxy recycling connections),
    // and this message's first command found it closed (explore32b F2: an attempt each).
    if (reused && transfer.sent == 0 &&
        ((code == 421 && transfer.replies == 1) || (transfer.replies == 0 && hung_up)))
      return F::idle_connection;
    // Before the recipient is named, a hang-up says nothing of the message: a relay crashing
    // or restarting on fresh connections failed every email due in a second (explore32d F7).
    const bool before_message = transfer.command.empty() || transfer.command == "EHLO" ||
                                transfer.command == "HELO" || transfer.command == "STARTTLS" ||
                                transfer.command == "AUTH" || transfer.command == "MAIL";
    const bool unreachable =
        result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_HOST ||
        result == CURLE_COULDNT_RESOLVE_PROXY || result == CURLE_SSL_CONNECT_ERROR ||
        result == CURLE_PEER_FAILED_VERIFICATION ||
        (result == CURLE_OPERATION_TIMEDOUT && transfer.replies == 0);
    // What the relay says of this worker, whatever the message: a 421 before the message (the
    // greeting, hello, login, sender), and the refusal of any of these (552: the message's
    // size, which is the message's). A 421 to its recipient or data is this message's
    // temporary refusal, as a 451 is (a domain's rate limit: Gmail's 421-4.7.28 at RCPT): as
    // the relay's, four such emails, probed first after every rest, held every email of every
    // worker for good (explore32b F1).
    const bool refuses_worker =
        (hung_up && before_message) ||
        (code == 421 && refused_at(transfer, result) == Stage::before_message) ||
        transfer.stopped_unauthenticated || result == CURLE_USE_SSL_FAILED ||
        result == CURLE_LOGIN_DENIED || result == CURLE_REMOTE_ACCESS_DENIED ||
        (result == CURLE_WEIRD_SERVER_REPLY && transfer.sent == 0 && transfer.replies == 1) ||
        (result == CURLE_SEND_ERROR && code != 552 &&
         std::string_view(transfer.error).starts_with("MAIL failed"));
    return unreachable || refuses_worker ? F::relay : F::none;
  }

  // libcurl's words for a failure, where they mislead said plainly: a hang-up is not an errno,
  // and a timeout after the whole message went may have left it with the relay.
  static std::string failure_text(const SmtpTransfer& transfer, CURLcode result) {
    const bool all_sent = transfer.sent == transfer.message.size();
    if (result == CURLE_RECV_ERROR && transfer.reply.rfind("354", 0) == 0 && all_sent)
      return "the relay closed the connection without answering the end of the message (it "
             "may have kept it: the next attempt sends it again, with the same Message-ID)";
    if (result == CURLE_RECV_ERROR) return "the relay closed the connection without a reply";
    if (result == CURLE_OPERATION_TIMEDOUT && all_sent)
      return "no answer to the end of the message within [email] timeout_ms (the relay may have "
             "kept it: the next attempt sends it again, with the same Message-ID)";
    if (result == CURLE_OPERATION_TIMEDOUT)
      return "no whole answer in time ([email] timeout_ms, and 10 s at most to connect): " +
             std::to_string(transfer.replies) + " replies heard";
    // A refusal is not "failed sending data" nor a "weird server reply" (explore32b F3).
    switch (refused_at(transfer, result)) {
      case Stage::recipient:
        return "the relay refused the recipient";
      case Stage::data:
        return "the relay refused to take the message (DATA)";
      case Stage::end_of_data:
        return "the relay refused the message after its data";
      case Stage::before_message:
        break;
    }
    return curl_error_text(result, transfer.error);
  }

  EmailConfig config_;
  Transfers& transfers_;
  std::string scheme_;
  bool logs_in_ = false;  // the URL has a user or a password
  std::string url_problem_;
  std::string from_problem_;
  std::vector<std::string> hidden_;  // what no error may show: the URL and its password
};

}  // namespace

std::unique_ptr<Channel> make_email_channel(const EmailConfig& config, Transfers& transfers) {
  return std::make_unique<EmailChannel>(config, transfers);
}

}  // namespace nudge
