// The webhook channel against a real HTTP receiver on loopback: body, headers, signature,
// failures, timeouts, concurrency and what error messages may show.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "channel.hpp"
#include "signature.hpp"
#include "support/listen_backlog.hpp"
#include "support/processes.hpp"
#include "support/webhook_receiver.hpp"
#include "transfers.hpp"

namespace nudge {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kSecret[] = "whsec_test_secret_123";

struct Received {
  std::string path;
  std::string body;
  httplib::Headers headers;
};

class WebhookChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Enough handler threads that concurrent deliveries never queue behind kept-alive ones.
    server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    server_.set_keep_alive_timeout(1);
    server_.Post("/ok", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      res.set_content("thanks", "text/plain");
    });
    server_.Post("/fail", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      res.status = 500;
      res.set_content(std::string(5000, 'x'), "text/plain");
    });
    server_.Post("/big", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      res.set_content(std::string(1 << 20, 'b'), "text/plain");
    });
    server_.Post("/redirect", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      res.status = 302;
      res.set_header("Location", "/ok");
    });
    server_.Post("/elsewhere", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      res.status = 307;
      res.set_header("Location", "http://[::1]:" + std::to_string(port_) + "/ok");
    });
    server_.Post("/upgrade", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      res.status = 301;
      res.set_header("Location", "https://hook:PASS@hooks.example:8443/services/TOKEN?code=KEY");
    });
    server_.Post("/hang", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      std::unique_lock lock(mutex_);
      released_.wait_for(lock, std::chrono::seconds(3), [this] { return release_; });
      res.set_content("late", "text/plain");
    });
    port_ = test::bind_to_port_with_backlog(server_, "127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!server_.is_running() && Clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(5));
    ASSERT_TRUE(server_.is_running());
  }

  void TearDown() override {
    {
      std::lock_guard lock(mutex_);
      release_ = true;
    }
    released_.notify_all();
    transfers_.reset();  // closes kept-alive connections before the server goes
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  void record(const httplib::Request& req) {
    std::lock_guard lock(mutex_);
    received_.push_back({req.path, req.body, req.headers});
  }

  std::vector<Received> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // A channel that may reach the receiver on loopback (the SSRF guard's tests set their own).
  std::unique_ptr<Channel> channel(WebhookConfig config = {}) {
    config.allow_private = {"127.0.0.0/8", "::1/128"};
    return make_webhook_channel(config, {}, *transfers_);
  }

  // A channel with the SSRF guard opened only for `allow_private`.
  std::unique_ptr<Channel> guarded_channel(std::vector<std::string> allow_private = {}) {
    WebhookConfig config;
    config.allow_private = std::move(allow_private);
    return make_webhook_channel(config, {}, *transfers_);
  }

  Fire fire(std::optional<std::string> target, int attempt = 1) const {
    Fire f;
    f.id = 42;
    f.entity_type = "interviewer";
    f.entity_id = "INT_100";
    f.event_type = "feedback_form";
    f.channel = "webhook";
    f.target = std::move(target);
    f.payload_json = R"({"form": "https://forms.example/f/1", "n": [1, 2]})";
    f.schedule_type = "recurring";
    f.scheduled_for = "2026-11-22 09:00:00.5+00";
    f.attempt = attempt;
    f.max_attempts = 3;
    return f;
  }

  // Runs the transfers until `finished` or the deadline; on the deadline, aborts what is left
  // so that no callback outlives the locals it writes to.
  void run_until(const std::function<bool()>& finished, milliseconds limit = milliseconds(5000)) {
    const auto deadline = Clock::now() + limit;
    while (!finished() && Clock::now() < deadline) transfers_->run(50, {});
    if (!finished()) transfers_->abort_all();
  }

  // Runs the transfers until every slot is filled (or the deadline passes).
  void run_until(const std::vector<std::optional<Delivery>>& slots) {
    run_until([&] {
      for (const auto& slot : slots)
        if (!slot) return false;
      return true;
    });
  }

  // Starts one fire and runs the transfers until it is done (or 5 s pass).
  std::optional<Delivery> deliver(Channel& ch, const Fire& f) {
    std::vector<std::optional<Delivery>> slots(1);
    int calls = 0;
    ch.start(f, [&](Delivery d) {
      ++calls;
      slots[0] = std::move(d);
    });
    run_until(slots);
    EXPECT_LE(calls, 1);
    return slots[0];
  }

  std::unique_ptr<Transfers> transfers_ = std::make_unique<Transfers>();
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::condition_variable released_;
  bool release_ = false;
  std::vector<Received> received_;
};

TEST(WebhookSignature, MatchesKnownVector) {
  // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec_test_secret_123'
  EXPECT_EQ(webhook_signature(kSecret, 1700000000, R"({"a":1})"),
            "t=1700000000,v1=e89dcbfdce3392fb275033fb083d8c81e095a63bf687d9a2cd50e7d5f55e21f6");
}

TEST(WebhookSignature, DependsOnSecretTimeAndBody) {
  const std::string base = webhook_signature(kSecret, 1700000000, R"({"a":1})");
  EXPECT_NE(base, webhook_signature("other", 1700000000, R"({"a":1})"));
  EXPECT_NE(base.substr(base.find(',')),
            webhook_signature(kSecret, 1700000001, R"({"a":1})").substr(base.find(',')));
  EXPECT_NE(base, webhook_signature(kSecret, 1700000000, R"({"a":2})"));
}

TEST_F(WebhookChannelTest, DeliversExactBodyAndHeaders) {
  auto ch = channel();
  const Fire f = fire(url("/ok"));
  std::optional<Delivery> got;
  ch->start(f, [&](Delivery d) { got = std::move(d); });
  EXPECT_FALSE(got) << "a network delivery reports from Transfers::run, not from start";
  run_until([&] { return got.has_value(); });

  ASSERT_TRUE(got);
  EXPECT_TRUE(got->delivered) << got->error;
  EXPECT_EQ(got->status_code, 200);
  EXPECT_EQ(got->response, "thanks");
  EXPECT_TRUE(got->error.empty());

  const auto requests = received();
  ASSERT_EQ(requests.size(), 1u);
  const Received& r = requests[0];
  EXPECT_EQ(r.path, "/ok");
  EXPECT_EQ(r.body, R"({"reminder_id":42,"entity_type":"interviewer","entity_id":"INT_100",)"
                    R"("event_type":"feedback_form","scheduled_for":"2026-11-22T09:00:00.5Z",)"
                    R"("attempt":1,"idempotency_key":"nudge-42-2026-11-22T09:00:00.5Z",)"
                    R"("payload":{"form": "https://forms.example/f/1", "n": [1, 2]}})");
  const auto header = [&](const char* name) {
    const auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string("<absent>") : it->second;
  };
  EXPECT_EQ(header("Content-Type"), "application/json");
  EXPECT_EQ(header("Idempotency-Key"), f.idempotency_key());
  EXPECT_EQ(header("Idempotency-Key"), "nudge-42-2026-11-22T09:00:00.5Z");
  EXPECT_EQ(header("Nudge-Attempt"), "1");
  EXPECT_EQ(header("User-Agent"), "nudge-worker");
  EXPECT_EQ(header("Expect"), "<absent>");
  EXPECT_EQ(header("Nudge-Signature"), "<absent>") << "no secret configured: unsigned";
}

TEST_F(WebhookChannelTest, RetryOfTheSameOccurrenceKeepsTheIdempotencyKey) {
  auto ch = channel();
  const auto first = deliver(*ch, fire(url("/ok"), 1));
  const auto second = deliver(*ch, fire(url("/ok"), 2));
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(first->delivered && second->delivered);

  const auto requests = received();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].headers.find("Idempotency-Key")->second,
            requests[1].headers.find("Idempotency-Key")->second);
  EXPECT_EQ(requests[0].headers.find("Nudge-Attempt")->second, "1");
  EXPECT_EQ(requests[1].headers.find("Nudge-Attempt")->second, "2");
  EXPECT_NE(requests[1].body.find(R"("attempt":2,)"), std::string::npos);
  EXPECT_NE(requests[1].body.find(R"("idempotency_key":"nudge-42-2026-11-22T09:00:00.5Z")"),
            std::string::npos);
}

TEST_F(WebhookChannelTest, SignatureVerifiesWithTheSecretOnly) {
  auto ch = channel({kSecret, 2000, 5000, {}});
  const auto before = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto got = deliver(*ch, fire(url("/ok")));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->delivered) << got->error;

  const auto requests = received();
  ASSERT_EQ(requests.size(), 1u);
  const auto it = requests[0].headers.find("Nudge-Signature");
  ASSERT_NE(it, requests[0].headers.end());
  const std::string& sig = it->second;
  EXPECT_TRUE(test::nudge_signature_verifies(sig, kSecret, requests[0].body)) << sig;
  EXPECT_FALSE(test::nudge_signature_verifies(sig, "whsec_wrong", requests[0].body));
  EXPECT_FALSE(test::nudge_signature_verifies(sig, kSecret, requests[0].body + " "));

  const std::int64_t t = std::stoll(sig.substr(2, sig.find(',') - 2));
  EXPECT_GE(t, before);
  EXPECT_LE(t, before + 5);

  for (const auto& [name, value] : requests[0].headers)
    EXPECT_EQ(value.find(kSecret), std::string::npos) << name;
  EXPECT_EQ(requests[0].body.find(kSecret), std::string::npos);
}

TEST_F(WebhookChannelTest, ServerErrorFailsWithStatusAndTruncatedBody) {
  auto ch = channel({kSecret, 2000, 5000, {}});
  const auto got = deliver(*ch, fire(url("/fail")));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->delivered);
  EXPECT_EQ(got->status_code, 500);
  EXPECT_EQ(got->error, "HTTP 500");
  EXPECT_EQ(got->response, std::string(kMaxResponseBytes, 'x'));
}

TEST_F(WebhookChannelTest, BigSuccessfulResponseIsDeliveredAndTruncated) {
  auto ch = channel();
  const auto got = deliver(*ch, fire(url("/big")));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->delivered) << got->error;
  EXPECT_EQ(got->status_code, 200);
  EXPECT_EQ(got->response, std::string(kMaxResponseBytes, 'b'));
}

// A receiver on loopback that answers one request with `head` and the start of a body
// shorter than its Content-Length, then closes the connection.
class BrokenOffAnswer {
 public:
  explicit BrokenOffAnswer(std::string answer) : answer_(std::move(answer)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof at;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || listen(fd_, 4) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&at), &size) != 0)
      return;
    port_ = ntohs(at.sin_port);
    thread_ = std::thread([this] {
      const int client = accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      std::string got;
      char buffer[4096];
      while (got.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = read(client, buffer, sizeof buffer);
        if (n <= 0) break;
        got.append(buffer, static_cast<std::size_t>(n));
      }
      (void)!write(client, answer_.data(), answer_.size());
      close(client);
    });
  }
  ~BrokenOffAnswer() {
    shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

 private:
  std::string answer_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// Any 2xx counts as delivered, even when the answer's body breaks off after it; another status
// broken off so is a failure that keeps its status code.
TEST_F(WebhookChannelTest, AnAnswerThatBreaksOffAfterItsStatusKeepsIt) {
  auto ch = channel();
  BrokenOffAnswer ok("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial");
  const auto delivered = deliver(*ch, fire(ok.url()));
  ASSERT_TRUE(delivered);
  EXPECT_TRUE(delivered->delivered) << delivered->error;
  EXPECT_EQ(delivered->status_code, 200);
  EXPECT_EQ(delivered->response, "partial");

  BrokenOffAnswer down("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000\r\n\r\nno");
  const auto failed = deliver(*ch, fire(down.url()));
  ASSERT_TRUE(failed);
  EXPECT_FALSE(failed->delivered);
  EXPECT_EQ(failed->status_code, 503);
  EXPECT_NE(failed->error.find("Transferred a partial file"), std::string::npos) << failed->error;
}

TEST_F(WebhookChannelTest, RedirectIsNotFollowed) {
  auto ch = channel();
  const auto got = deliver(*ch, fire(url("/redirect")));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->delivered);
  EXPECT_EQ(got->status_code, 302);
  EXPECT_EQ(got->error, "HTTP 302 (redirects are not followed; Location: a path on the same host)");
  const auto requests = received();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].path, "/redirect");
}

// ---- The SSRF guard ----

std::string Refused(const std::string& why) {
  return "refused: " + why + " (SSRF guard; [webhook] allow_private)";
}

TEST_F(WebhookChannelTest, GuardRefusesPrivateAddressesBeforeConnecting) {
  const std::string port = std::to_string(port_);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {url("/ok"), "127.0.0.1 is a loopback address"},
      {"http://[::1]:" + port + "/ok", "::1 is a loopback address"},
      {"http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"},
      {"http://10.20.30.40:" + port + "/", "10.20.30.40 is a private address"},
      {"http://[::ffff:127.0.0.1]:" + port + "/ok", "::ffff:127.0.0.1 is a loopback address"},
      {"http://[fe80::1]:" + port + "/", "fe80::1 is a link-local address"},
      {"http://2130706433:" + port + "/ok", "127.0.0.1 is a loopback address"},
  };
  auto ch = guarded_channel();
  for (const auto& [target, why] : cases) {
    SCOPED_TRACE(target);
    const auto start = Clock::now();
    const auto got = deliver(*ch, fire(target));
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->delivered);
    EXPECT_FALSE(got->status_code);
    EXPECT_EQ(got->error,
              Refused(why) + " (a literal address: another attempt cannot change that)");
    EXPECT_TRUE(got->final) << "the occurrence ends: no attempt would be let through";
    EXPECT_FALSE(got->counts_for_host) << "never connected: not the host's failure";
    EXPECT_LT(Clock::now() - start, milliseconds(1500)) << "refused, not timed out";
  }
  EXPECT_TRUE(received().empty());
}

TEST_F(WebhookChannelTest, GuardChecksTheAddressANameResolvesTo) {
  // localhost resolves to 127.0.0.1 (and ::1); the name itself says nothing.
  auto ch = guarded_channel();
  const auto got = deliver(*ch, fire("http://localhost:" + std::to_string(port_) + "/ok"));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->delivered);
  EXPECT_TRUE(got->error == Refused("127.0.0.1 is a loopback address") ||
              got->error == Refused("::1 is a loopback address"))
      << got->error;
  EXPECT_FALSE(got->final) << "what a name resolves to can change: the next attempt looks again";
  EXPECT_TRUE(received().empty());
}

// One address refused, another allowed but nobody listening: the error is the connection's.
TEST_F(WebhookChannelTest, AnAllowedAddressThatFailsGivesItsOwnErrorNotTheRefusal) {
  auto ch = guarded_channel({"127.0.0.1/32"});
  const auto got =
      deliver(*ch, fire("http://localhost:" + std::to_string(test::free_tcp_port()) + "/ok"));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->delivered);
  EXPECT_TRUE(got->counts_for_host);
  EXPECT_EQ(got->error.rfind("refused: ", 0), std::string::npos) << got->error;
  EXPECT_NE(got->error.find("onnect"), std::string::npos) << got->error;
}

TEST_F(WebhookChannelTest, AllowPrivateOpensItsRangeOnly) {
  auto ch = guarded_channel({"127.0.0.1/32"});
  const auto open = deliver(*ch, fire(url("/ok")));
  ASSERT_TRUE(open);
  EXPECT_TRUE(open->delivered) << open->error;
  // localhost: ::1 is refused, 127.0.0.1 is open, so libcurl connects there.
  const auto by_name = deliver(*ch, fire("http://localhost:" + std::to_string(port_) + "/ok"));
  ASSERT_TRUE(by_name);
  EXPECT_TRUE(by_name->delivered) << by_name->error;
  const auto closed = deliver(*ch, fire("http://127.0.0.2:" + std::to_string(port_) + "/ok"));
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->error, Refused("127.0.0.2 is a loopback address") +
                               " (a literal address: another attempt cannot change that)");
  EXPECT_EQ(received().size(), 2u);
}

// A redirect's Location is named by its scheme and host: its user, path and query may hold a
// token (a secret target redirected to https kept its path's token in the error: explore31d F4).
TEST_F(WebhookChannelTest, ARedirectIsNamedByItsSchemeAndHostOnly) {
  auto ch = channel();
  const auto got = deliver(*ch, fire(url("/upgrade")));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->error,
            "HTTP 301 (redirects are not followed; Location: https://hooks.example:8443)");
}

TEST_F(WebhookChannelTest, ARedirectToLoopbackIsNotFollowed) {
  auto ch = guarded_channel({"127.0.0.1/32"});
  const auto got = deliver(*ch, fire(url("/elsewhere")));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->delivered);
  EXPECT_EQ(got->status_code, 307);
  EXPECT_EQ(got->error, "HTTP 307 (redirects are not followed; Location: http://[::1]:" +
                            std::to_string(port_) + ")");
  const auto requests = received();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].path, "/elsewhere");
}

TEST_F(WebhookChannelTest, RefusedConnectionFailsQuickly) {
  auto ch = channel();
  const std::string closed = "http://127.0.0.1:" + std::to_string(test::free_tcp_port()) + "/hook";
  const auto start = Clock::now();
  const auto got = deliver(*ch, fire(closed));
  ASSERT_TRUE(got);
  EXPECT_LT(Clock::now() - start, milliseconds(1500));
  EXPECT_FALSE(got->delivered);
  EXPECT_FALSE(got->status_code);
  EXPECT_TRUE(got->unreachable) << "the request never left: a free try";
  // libcurl's own text, then its detail, each once (its detail ends with the text again).
  EXPECT_EQ(got->error.rfind("Couldn't connect to server: Failed to connect to 127.0.0.1 port", 0),
            0u)
      << got->error;
  EXPECT_EQ(got->error.find("Couldn't connect to server"),
            got->error.rfind("Couldn't connect to server"))
      << got->error;
}

TEST_F(WebhookChannelTest, HangingReceiverTimesOutWithoutBlockingOthers) {
  auto ch = channel({"", 2000, 300, {}});
  std::vector<std::optional<Delivery>> slots(2);
  std::vector<int> order;
  const auto start = Clock::now();
  Clock::duration hang_took{};
  ch->start(fire(url("/hang")), [&](Delivery d) {
    hang_took = Clock::now() - start;
    order.push_back(0);
    slots[0] = std::move(d);
  });
  ch->start(fire(url("/ok")), [&](Delivery d) {
    order.push_back(1);
    slots[1] = std::move(d);
  });
  run_until(slots);

  ASSERT_TRUE(slots[0] && slots[1]);
  EXPECT_EQ(order, (std::vector<int>{1, 0})) << "the fast receiver is not held up by the slow one";
  EXPECT_TRUE(slots[1]->delivered) << slots[1]->error;
  EXPECT_FALSE(slots[0]->delivered);
  EXPECT_FALSE(slots[0]->status_code);
  EXPECT_NE(slots[0]->error.find("Timeout"), std::string::npos) << slots[0]->error;
  EXPECT_FALSE(slots[0]->unreachable) << "it connected: the request may have reached it";
  EXPECT_LT(hang_took, milliseconds(1000));
  EXPECT_GE(hang_took, milliseconds(250));
}

TEST_F(WebhookChannelTest, ManyConcurrentDeliveries) {
  auto ch = channel({kSecret, 2000, 5000, {}});
  std::vector<std::optional<Delivery>> slots(20);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    Fire f = fire(url("/ok"));
    f.id = static_cast<std::int64_t>(i + 1);
    ch->start(f, [&slots, i](Delivery d) { slots[i] = std::move(d); });
  }
  EXPECT_EQ(transfers_->active(), slots.size());
  run_until(slots);
  for (const auto& slot : slots) {
    ASSERT_TRUE(slot);
    EXPECT_TRUE(slot->delivered) << slot->error;
  }
  EXPECT_EQ(received().size(), slots.size());
  EXPECT_EQ(transfers_->active(), 0u);
}

TEST_F(WebhookChannelTest, UnfinishedTransferIsReportedAndFreedWhenTransfersEnds) {
  // Shutdown with a delivery in flight: reported once as not delivered, nothing leaks (ASan).
  auto ch = channel({kSecret, 2000, 10000, {}});
  int calls = 0;
  std::optional<Delivery> got;
  ch->start(fire(url("/hang")), [&](Delivery d) {
    ++calls;
    got = std::move(d);
  });
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (received().empty() && calls == 0 && Clock::now() < deadline) transfers_->run(50, {});
  ASSERT_EQ(received().size(), 1u);
  EXPECT_EQ(calls, 0);
  transfers_.reset();
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->delivered);
  EXPECT_FALSE(got->status_code);
  EXPECT_FALSE(got->error.empty());
}

TEST_F(WebhookChannelTest, MissingTargetFailsAtOnceWithClearError) {
  auto ch = channel();
  std::optional<Delivery> got;
  ch->start(fire(std::nullopt), [&](Delivery d) { got = std::move(d); });
  ASSERT_TRUE(got) << "nothing to wait for: reported from start";
  EXPECT_FALSE(got->delivered);
  EXPECT_FALSE(got->status_code);
  EXPECT_EQ(got->error,
            "no address: the reminder has no target and contacts has no webhook address for "
            "interviewer/INT_100");
  EXPECT_EQ(transfers_->active(), 0u);
}

TEST_F(WebhookChannelTest, OnlyHttpAndHttpsUrls) {
  auto ch = channel();
  for (const std::string target : {"ftp://127.0.0.1/hook", "file:///etc/passwd", "not a url"}) {
    std::optional<Delivery> got;
    ch->start(fire(target), [&](Delivery d) { got = std::move(d); });
    run_until([&] { return got.has_value(); });
    ASSERT_TRUE(got) << target;
    EXPECT_FALSE(got->delivered) << target;
    EXPECT_FALSE(got->error.empty()) << target;
  }
}

TEST_F(WebhookChannelTest, ErrorsNeverShowCredentialsOrQuery) {
  auto ch = channel({kSecret, 1000, 2000, {}});
  const int closed = test::free_tcp_port();
  for (const std::string& target : std::vector<std::string>{
           "http://user:password@127.0.0.1:" + std::to_string(closed) + "/hook?token=secret",
           "http://user:password@127.0.0.1:" + std::to_string(closed) + "/hook?token=secret#secret",
           "http://user:password@no-such-host.invalid/hook?token=secret",
           "http://user:password@[::1/hook?token=secret"}) {
    const auto got = deliver(*ch, fire(target));
    ASSERT_TRUE(got) << target;
    EXPECT_FALSE(got->delivered);
    EXPECT_FALSE(got->error.empty());
    EXPECT_EQ(got->error.find("password"), std::string::npos) << got->error;
    EXPECT_EQ(got->error.find("secret"), std::string::npos) << got->error;
    EXPECT_EQ(got->error.find(kSecret), std::string::npos) << got->error;
  }
}

}  // namespace

}  // namespace nudge
