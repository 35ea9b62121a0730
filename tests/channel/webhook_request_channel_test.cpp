// A webhook reminder's own request against a real HTTP receiver on loopback: each method, its
// headers with secrets filled in, the signature over the bytes sent, a secret the worker lacks,
// a receiver that echoes a secret back, and one whose answer never ends.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "channel.hpp"
#include "support/webhook_receiver.hpp"
#include "transfers.hpp"

namespace nudge {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr char kSigningKey[] = "whsec_request_test_0123";
constexpr char kToken[] = "tok_live_0123456789abcdef";

// One connection at a time on loopback: reads a request's head, answers `status` with a chunked
// body it sends until the client goes.
class EndlessReceiver {
 public:
  explicit EndlessReceiver(int status) : status_(status) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(listener_, 4);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~EndlessReceiver() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  EndlessReceiver(const EndlessReceiver&) = delete;
  EndlessReceiver& operator=(const EndlessReceiver&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/stream"; }
  long long sent() const { return sent_; }

 private:
  void serve() {
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    std::string head;
    char buffer[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      head.append(buffer, static_cast<std::size_t>(n));
    }
    std::string out = "HTTP/1.1 " + std::to_string(status_) +
                      " X\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string chunk = "1000\r\n" + std::string(4096, 'x') + "\r\n";
    while (!stopping_ && ::send(fd, out.data(), out.size(), MSG_NOSIGNAL) > 0) {
      sent_ += static_cast<long long>(out.size());
      out = chunk;
    }
    ::close(fd);
  }

  int status_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<long long> sent_{0};
  std::thread thread_;
};

class WebhookRequestChannel : public ::testing::Test {
 protected:
  // A fire whose reminder has its own request, as the claim returns it.
  Fire fire(const std::string& path, const json& request) const {
    Fire f;
    f.id = 42;
    f.entity_type = "user";
    f.entity_id = "U1";
    f.event_type = "nag";
    f.channel = "webhook";
    f.target = receiver_.url(path);
    f.payload_json = "{}";
    f.scheduled_for = "2026-11-22 09:00:00+00";
    f.attempt = 1;
    f.request = request.dump();
    return f;
  }

  // Delivers one fire with the signing key and the secret "api" configured.
  std::optional<Delivery> deliver(const Fire& f,
                                  const Secrets& secrets = {{"api", {kToken, {"127.0.0.1"}}}}) {
    auto channel =
        make_webhook_channel({kSigningKey, 2000, 5000, {"127.0.0.0/8"}}, secrets, transfers_);
    std::optional<Delivery> got;
    channel->start(f, [&](Delivery d) { got = std::move(d); });
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!got && Clock::now() < deadline) transfers_.run(50, {});
    if (!got) transfers_.abort_all();
    return got;
  }

  test::WebhookReceiver receiver_;
  Transfers transfers_;  // declared last: its transfers end before the receiver does
};

std::string header(const test::ReceivedRequest& r, const std::string& name) {
  const auto it = r.headers.find(name);
  return it == r.headers.end() ? "<absent>" : it->second;
}

TEST_F(WebhookRequestChannel, EachMethodIsSentAsGivenAndGetAndDeleteCarryNoBody) {
  for (const std::string method : {"POST", "PUT", "PATCH", "GET", "DELETE"}) {
    SCOPED_TRACE(method);
    const bool body = method != "GET" && method != "DELETE";
    json request = {{"method", method}};
    if (body)
      request.update(
          {{"body", "{\"m\": \"" + method + "\"}"}, {"content_type", "application/json"}});
    const auto got = deliver(fire("/" + method, request));
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->delivered) << got->error;
    const auto received = receiver_.requests_to("/" + method);
    ASSERT_EQ(received.size(), 1u);
    const auto& r = received[0];
    EXPECT_EQ(r.method, method);
    EXPECT_EQ(r.body, body ? "{\"m\": \"" + method + "\"}" : "");
    EXPECT_EQ(header(r, "content-type"), body ? "application/json" : "<absent>");
    EXPECT_EQ(header(r, "idempotency-key"), "nudge-42-2026-11-22T09:00:00Z");
    EXPECT_EQ(header(r, "nudge-attempt"), "1");
    // The signature covers exactly the bytes sent: the body, or nothing.
    EXPECT_TRUE(test::nudge_signature_verifies(header(r, "nudge-signature"), kSigningKey, r.body));
  }
}

// POST, PUT and PATCH without a body of their own send an empty one with no Content-Type
// (libcurl would call it a form).
TEST_F(WebhookRequestChannel, AnEmptyBodyHasNoType) {
  for (const std::string method : {"POST", "PUT", "PATCH"}) {
    SCOPED_TRACE(method);
    const auto got = deliver(fire("/empty-" + method, {{"method", method}}));
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->delivered) << got->error;
    const auto r = receiver_.requests_to("/empty-" + method).at(0);
    EXPECT_EQ(r.method, method);
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(header(r, "content-type"), "<absent>");
  }
}

TEST_F(WebhookRequestChannel, HeadersArriveWithTheirSecretsFilledIn) {
  const auto got = deliver(fire(
      "/h", {{"headers",
              {{"Authorization", "Bearer {{secret.api}}"}, {"X-Team", "ops"}, {"X-Empty", ""}}},
             {"body", "hello"},
             {"content_type", "text/plain; charset=utf-8"}}));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->delivered) << got->error;
  const auto r = receiver_.requests_to("/h").at(0);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(header(r, "authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(header(r, "x-team"), "ops");
  EXPECT_EQ(header(r, "content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "hello");
}

TEST_F(WebhookRequestChannel, ASecretTheWorkerLacksFailsTheAttemptAndSendsNothing) {
  const auto got =
      deliver(fire("/missing", {{"headers", {{"Authorization", "Basic {{secret.sms}}"}}},
                                {"body", "x=1"},
                                {"content_type", "application/x-www-form-urlencoded"}}));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->delivered);
  EXPECT_FALSE(got->status_code);
  EXPECT_EQ(got->error,
            "request.headers.Authorization: secret \"sms\" is not configured in this worker "
            "(set [secrets] sms or NUDGE_SECRETS_SMS)");
  EXPECT_TRUE(receiver_.requests().empty());
}

TEST_F(WebhookRequestChannel, AReceiverThatEchoesTheSecretHasItMaskedInTheResponseKept) {
  receiver_.respond("/echo", [](const test::ReceivedRequest& r) {
    return "you sent " + r.headers.at("authorization");
  });
  receiver_.on("/echo", [](int) { return 401; });
  const auto got =
      deliver(fire("/echo", {{"headers", {{"Authorization", "Bearer {{secret.api}}"}}}}));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->delivered);
  EXPECT_EQ(got->status_code, 401);
  EXPECT_EQ(got->response, "you sent Bearer ***");
}

// Basic auth's secret is base64 of "account:token"; a gateway that refuses it may echo the
// decoded text, or the token alone.
TEST_F(WebhookRequestChannel, AReceiverThatEchoesABasicCredentialDecodedHasItMasked) {
  receiver_.respond("/gateway", [](const test::ReceivedRequest&) {
    return "invalid credentials AC123:auth-token (token auth-token)";
  });
  receiver_.on("/gateway", [](int) { return 401; });
  const auto got = deliver(
      fire("/gateway", {{"headers", {{"Authorization", "Basic {{secret.twilio}}"}}}}),
      {{"twilio", {"QUMxMjM6YXV0aC10b2tlbg==", {"127.0.0.1"}}}});  // base64 of AC123:auth-token
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status_code, 401);
  EXPECT_EQ(got->response, "invalid credentials *** (token ***)");
}

// A receiver echoing what it got has the URL's credentials masked too: the user and password,
// the Basic credential libcurl made of them, and a URL secret's path and query as JSON and
// percent-encoding escape them, or a query's value alone (explore29a #2: stored whole).
TEST_F(WebhookRequestChannel, AReceiverThatEchoesAUrlsCredentialsHasThemMasked) {
  receiver_.respond("/echo", [](const test::ReceivedRequest& r) {
    return "you sent " + r.headers.at("authorization") + " as alice, s3cret-pw";
  });
  receiver_.on("/echo", [](int) { return 401; });
  Fire plain = fire("/echo", json::object());
  plain.target->replace(0, 7, "http://alice:s3cret-pw@");
  const auto got = deliver(plain);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status_code, 401);
  EXPECT_EQ(got->response, "you sent Basic *** as ***, ***");

  receiver_.respond("/hooks/T1/seg-7f3a9", [](const test::ReceivedRequest&) {
    return R"({"path": "\/hooks\/T1\/seg-7f3a9", "raw": "%2Fhooks%2FT1%2Fseg-7f3a9",)"
           R"( "args": {"token": "qv-0987x"}})";
  });
  receiver_.on("/hooks/T1/seg-7f3a9", [](int) { return 400; });
  Fire kept = fire("/", json::object());
  kept.target = "{{secret.hook}}";
  const auto echoed =
      deliver(kept, {{"hook", {receiver_.url("/hooks/T1/seg-7f3a9?token=qv-0987x"), {}}}});
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->status_code, 400) << echoed->error;
  EXPECT_EQ(echoed->response, R"({"path": "***", "raw": "***", "args": {"token": "***"}})");
}

// A reminder's own timeout shorter than a connection may take does not count against the host:
// any caller could open a healthy host's circuit breaker with "timeout_ms": 1 (explore29a LOW 6).
TEST_F(WebhookRequestChannel, ATimeoutOfItsOwnBelowTheConnectTimeoutDoesNotCountForTheHost) {
  receiver_.on("/slow", [](int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return 200;
  });
  const auto short_own = deliver(fire("/slow", {{"timeout_ms", 50}}));
  ASSERT_TRUE(short_own);
  EXPECT_FALSE(short_own->delivered);
  EXPECT_FALSE(short_own->counts_for_host) << short_own->error;
  EXPECT_NE(short_own->error.find("does not count it"), std::string::npos) << short_own->error;
  const auto long_own = deliver(fire("/slow", {{"timeout_ms", 2100}}));
  ASSERT_TRUE(long_own);
  EXPECT_TRUE(long_own->delivered) << long_own->error;
}

// A receiver that answers its status and then streams a body without end: the worker reads a
// little past what it keeps and ends the transfer, and the status decides (explore29a LOW 8: it
// read until the timeout, 4.9 GB in 10 s, and a 5xx read as a timeout).
TEST_F(WebhookRequestChannel, AnEndlessResponsesStatusDecidesOnceAFewKilobytesAreRead) {
  for (const int status : {500, 200}) {
    SCOPED_TRACE(status);
    EndlessReceiver endless(status);
    Fire f = fire("/", json::object());
    f.target = endless.url();
    const auto started = Clock::now();
    const auto got = deliver(f);
    ASSERT_TRUE(got);
    EXPECT_LT(Clock::now() - started, std::chrono::seconds(3)) << "not read until the timeout";
    EXPECT_EQ(got->status_code, status);
    EXPECT_EQ(got->delivered, status == 200) << got->error;
    EXPECT_EQ(got->error, status == 200 ? "" : "HTTP 500");
    EXPECT_EQ(got->response, std::string(kMaxResponseBytes, 'x'));
  }
}

TEST_F(WebhookRequestChannel, ASecretCutAtTheEndOfTheKeptResponseLeavesNoPartOfIt) {
  const std::string token = kToken;
  // The first copy is masked whole; the second begins 5 bytes before the end of what is kept.
  const std::size_t keep = kMaxResponseBytes + token.size();
  receiver_.respond("/long", [&](const test::ReceivedRequest&) {
    std::string body = token;
    body += std::string(keep - 5 - body.size(), '.');
    return body + token + std::string(5000, 'z');
  });
  const auto got =
      deliver(fire("/long", {{"headers", {{"Authorization", "Bearer {{secret.api}}"}}}}));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->delivered) << got->error;
  EXPECT_EQ(got->response.rfind("***", 0), 0u);
  EXPECT_EQ(got->response.find(token.substr(0, 5)), std::string::npos) << got->response;
  EXPECT_EQ(got->response.find('z'), std::string::npos);
}

}  // namespace
}  // namespace nudge
