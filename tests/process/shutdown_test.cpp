// SIGTERM against peers that will not cooperate: real nudge-worker processes, a mail relay that
// has gone silent, a webhook receiver that never answers and a relay that takes bytes slowly
// (tests/support/misbehaving_relay.hpp, webhook_receiver.hpp). Deliveries running get the 3 s
// grace and no more, whatever the peer does or the channel's timeout says; what ended is
// recorded, the rest released and delivered again after a restart with the same key.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "process/process_fixture.hpp"
#include "support/misbehaving_relay.hpp"
#include "support/smtp_server.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

using Clock = std::chrono::steady_clock;

// The README's promise: running deliveries get 3 s; then one round trip records and releases.
// The 3 s margin is for a busy shared machine: an ASan build at load 11 took grace + 2.4 s (its
// exit checks for leaks); the defect this guards against took 30 s.
constexpr auto kGrace = 3s;
constexpr auto kStopsWithin = kGrace + 3s;

class Shutdown : public ProcessTest {
 protected:
  // Sends SIGTERM and waits for the exit (which must be 0); how long it took.
  Clock::duration time_to_stop(ChildProcess& worker) {
    const auto begin = Clock::now();
    worker.signal(SIGTERM);
    const std::optional<int> code = worker.wait(kSlow);
    const auto took = Clock::now() - begin;
    EXPECT_EQ(code, std::optional<int>(0)) << all_logs();
    RecordProperty(
        "stopped_after_ms",
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
    return took;
  }

  static std::map<std::string, std::string> email_env(const std::string& smtp_url) {
    // The longest timeout there is: only the grace may bound the stop.
    return {{"NUDGE_EMAIL_SMTP_URL", smtp_url},
            {"NUDGE_EMAIL_FROM", "nudge@example.com"},
            {"NUDGE_EMAIL_TIMEOUT_MS", "600000"}};
  }

  // A one_time reminder due now on `channel` to `target`; its id.
  std::int64_t create(const std::string& entity_id, const std::string& channel,
                      const std::string& target, const std::string& payload = "{}") {
    return value<std::int64_t>(
        "SELECT (reminder).id FROM nudge.create_reminder(p_entity_type => 'candidate',"
        " p_entity_id => $1, p_event_type => 'interview', p_channel => $2,"
        " p_schedule_type => 'one_time', p_run_at => now(), p_target => $3,"
        " p_payload => $4::jsonb)",
        entity_id, channel, target, payload);
  }

  // No attempt recorded, no lease held, no attempt counted: as if never claimed.
  void expect_released(std::int64_t id) {
    EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE reminder_id = $1", id), 0);
    EXPECT_EQ(
        value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE reminder_id = $1", id), 0);
    EXPECT_TRUE(
        value<bool>("SELECT status = 'ACTIVE' AND leased_by IS NULL AND attempt = 0"
                    " FROM nudge.reminders WHERE id = $1",
                    id))
        << all_logs();
  }

  // The reminder's one execution: delivered at the first attempt.
  void expect_delivered_once(std::int64_t id) {
    const pqxx::result e =
        sql("SELECT outcome, attempts FROM nudge.executions WHERE reminder_id = $1", id);
    ASSERT_EQ(e.size(), 1u) << all_logs();
    EXPECT_EQ(e[0][0].as<std::string>(), "delivered");
    EXPECT_EQ(e[0][1].as<int>(), 1);
    EXPECT_EQ(
        value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE reminder_id = $1", id), 1);
  }

  // The Idempotency-Key header among what `relay` has read so far; empty until its line is whole.
  static std::string key_seen_by(const MisbehavingRelay& relay) {
    static const std::string kName = "Idempotency-Key: ";
    const std::string text = relay.received();
    const auto at = text.find(kName);
    const auto end = at == std::string::npos ? at : text.find("\r\n", at);
    return end == std::string::npos ? "" : text.substr(at + kName.size(), end - at - kName.size());
  }
};

// Issue 13: a relay that took one message and then stopped answering, keeping the connection
// open. libcurl keeps that connection for reuse (on the lane that sent the message) and, on the
// way out, says QUIT and waits for the reply (120 s before the fix). Nothing is running, so the
// worker exits at once.
TEST_F(Shutdown, AMailRelayGoneSilentDoesNotDelayTheExit) {
  MisbehavingRelay relay(MisbehavingRelay::Behaviour::silent_after_one_message);
  const std::int64_t id = create("c1", "email", "ann@example.com");
  auto& worker = start_worker(email_env(relay.url()));
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  ASSERT_EQ(relay.messages(), 1);
  ASSERT_EQ(relay.open_connections(), 1) << "the connection kept for reuse";

  const auto took = time_to_stop(worker);
  EXPECT_LE(took, kStopsWithin) << all_logs();
  EXPECT_TRUE(wait_until(5s, [&] { return relay.open_connections() == 0; }));
  expect_delivered_once(id);
  EXPECT_EQ(leased_by(worker.pid()), 0);
}

// A receiver that read the request and never answers: its delivery gets the grace, then is cut
// and released; one that answers within the grace is recorded.
TEST_F(Shutdown, AWebhookReceiverThatNeverAnswersIsCutAfterTheGrace) {
  WebhookReceiver receiver;
  receiver.on("/never", [&](int n) {
    while (n == 1 && !receiver.stopping()) std::this_thread::sleep_for(10ms);
    return 200;
  });
  receiver.on("/late", [&](int) {
    std::this_thread::sleep_for(1s);  // ends inside the grace
    return 200;
  });
  const std::int64_t never = create("c1", "webhook", receiver.url("/never"));
  const std::int64_t late = create("c2", "webhook", receiver.url("/late"));
  auto& worker = start_worker({{"NUDGE_WEBHOOK_TIMEOUT_MS", "600000"}});
  ASSERT_TRUE(wait_until(
      kSlow,
      [&] {
        return !receiver.requests_to("/never").empty() && !receiver.requests_to("/late").empty();
      },
      5ms))
      << all_logs();

  const auto took = time_to_stop(worker);
  EXPECT_GE(took, kGrace) << "a running delivery gets the grace";
  EXPECT_LE(took, kStopsWithin) << all_logs();
  expect_delivered_once(late);
  expect_released(never);
  EXPECT_EQ(leased_by(worker.pid()), 0);
  // Said, so a receiver's second copy has its reason in the log.
  const std::string log = worker.log();
  const auto said = log.find("aborting deliveries still running after the grace");
  ASSERT_NE(said, std::string::npos) << log;
  const auto line = log.rfind('\n', said) + 1;  // npos + 1: the first line
  EXPECT_EQ(log.compare(line, 13, "{\"aborted\":1,"), 0) << log;

  // The next worker delivers it, with the same key; the cut attempt did not count.
  start_worker();
  ASSERT_TRUE(wait_for_executions(2)) << all_logs();
  expect_delivered_once(never);
  const auto got = receiver.requests_to("/never");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].headers.at("idempotency-key"), got[1].headers.at("idempotency-key"));
  EXPECT_EQ(got[1].headers.at("nudge-attempt"), "1");
  EXPECT_EQ(receiver.requests_to("/late").size(), 1u);
}

// [worker] stop_grace_ms above a receiver's answer time: the delivery under way at a stop is
// recorded, not cut and sent again by the next worker (explore22a F6: a receiver answering in
// 4 s got a second copy at every rolling restart with the fixed 3 s).
TEST_F(Shutdown, AGraceLongerThanTheAnswerLetsTheDeliveryEnd) {
  WebhookReceiver receiver;
  receiver.on("/slow", [](int) {
    std::this_thread::sleep_for(4s);
    return 200;
  });
  const std::int64_t id = create("c1", "webhook", receiver.url("/slow"));
  auto& worker = start_worker({{"NUDGE_WORKER_STOP_GRACE_MS", "8000"}});
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return !receiver.requests_to("/slow").empty(); }, 5ms))
      << all_logs();
  const auto took = time_to_stop(worker);
  EXPECT_GE(took, 3500ms) << "it waited for the answer";
  EXPECT_LE(took, 8s + 3s) << all_logs();
  expect_delivered_once(id);
  EXPECT_EQ(worker.log().find("aborting deliveries"), std::string::npos) << worker.log();
  EXPECT_EQ(receiver.requests_to("/slow").size(), 1u);
}

// A DNS server that takes queries and never answers: a UDP socket on port 53 of a loopback
// address of its own, which nobody reads.
class SilentDnsServer {
 public:
  SilentDnsServer()
      : address_("127.53." + std::to_string(::getpid() % 250 + 1) + "." +
                 std::to_string(free_tcp_port() % 250 + 1)),
        fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(53);
    ::inet_pton(AF_INET, address_.c_str(), &at.sin_addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0)
      ADD_FAILURE() << "cannot listen on " << address_ << ":53 (the suite runs as root)";
  }
  ~SilentDnsServer() { ::close(fd_); }
  SilentDnsServer(const SilentDnsServer&) = delete;
  SilentDnsServer& operator=(const SilentDnsServer&) = delete;
  const std::string& address() const { return address_; }

 private:
  std::string address_;
  int fd_;
};

// A name the resolver never answers for (the worker in a mount namespace of its own, whose
// resolv.conf names a silent server, with a 30 s timeout) holds neither the worker's stop nor
// the other deliveries of its claim loop: libcurl waited for its resolver thread when such a
// transfer ended, so a stop took the resolver's timeout (57 s) and one loop's other deliveries
// waited 26 s behind it, its attempt running past timeout_ms (explore14b #1, #4).
TEST_F(Shutdown, ANameTheResolverNeverAnswersHoldsNeitherTheStopNorOtherDeliveries) {
  SilentDnsServer dns;
  const auto conf = dir_ / "resolv.conf";
  std::ofstream(conf) << "nameserver " << dns.address() << "\noptions timeout:30 attempts:1\n";
  WebhookReceiver receiver;
  ChildProcess worker({"unshare", "--mount", "sh", "-c",
                       "mount --bind '" + conf.string() + "' /etc/resolv.conf && exec '" +
                           program("nudge-worker") + "'"},
                      worker_env(db_.url(), {{"NUDGE_WORKER_CONCURRENCY", "1"}}),
                      (dir_ / "dns-worker.log").string());
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return worker.log().find("worker started") != std::string::npos;
  })) << worker.log();

  const std::int64_t unresolved = create("c1", "webhook", "http://never.answered.test:8080/");
  std::this_thread::sleep_for(1s);  // its lookup under way
  const auto sent = Clock::now();
  for (const char* id : {"c2", "c3", "c4"}) create(id, "webhook", receiver.url("/fast"));
  ASSERT_TRUE(wait_until(kSlow, [&] { return receiver.requests_to("/fast").size() == 3; }))
      << worker.log();
  EXPECT_LE(Clock::now() - sent, 5s) << "the loop waited for the lookup\n" << worker.log();
  // Its attempt ends at the connect timeout (2 s), not the resolver's.
  EXPECT_TRUE(wait_until(5s, [&] {
    return value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE reminder_id = $1",
                       unresolved) > 0;
  })) << worker.log();

  create("c5", "webhook", "http://never.answered.again.test:8080/");
  std::this_thread::sleep_for(1s);
  const auto asked = Clock::now();
  worker.signal(SIGTERM);
  EXPECT_EQ(worker.wait(kSlow), std::optional<int>(0)) << worker.log();
  EXPECT_LE(Clock::now() - asked, kStopsWithin) << worker.log();
}

// A claim waiting for a lock (a migration holding nudge.reminders, say) ends the stop's wait
// two seconds after the grace: its statement is cancelled. The worker waited for the lock's
// release (85 s in explore14b #2).
TEST_F(Shutdown, AStatementWaitingForALockIsCancelledAfterTheGrace) {
  auto& worker = start_worker({{"NUDGE_WORKER_LEASE_SECONDS", "5"}});
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return worker.log().find("worker started") != std::string::npos;
  })) << worker.log();
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
      " next_run_at) VALUES ('lock', 'l1', 'due', 'log', 'one_time', now() + interval '1 second')");
  pqxx::connection locker(db_.url());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE nudge.reminders IN ACCESS EXCLUSIVE MODE");
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return value<long>(
               "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1 "
               "AND wait_event_type = 'Lock'",
               "%:" + std::to_string(worker.pid()) + ":%/0") > 0;
  })) << worker.log();

  const auto asked = Clock::now();
  worker.signal(SIGTERM);
  EXPECT_EQ(worker.wait(kSlow), std::optional<int>(0)) << worker.log();
  EXPECT_LE(Clock::now() - asked, kGrace + 2s + 3s) << worker.log();
  EXPECT_NE(worker.log().find("cancelled statements still waiting after the stop's grace"),
            std::string::npos)
      << worker.log();
  lock.abort();
  // Nothing lost: the next worker delivers it.
  start_worker();
  EXPECT_TRUE(wait_for_executions(1)) << all_logs();
}

// A relay that reads a big message at 1.3 KB/s. The kernel takes the rest of it from libcurl,
// which then waits for the relay's "250" inside curl_multi_perform, where the claim loop cannot
// see SIGTERM: the worker cuts the connection from another thread at the end of the grace. The
// next worker sends the message again, whole, with the same key.
TEST_F(Shutdown, AMailRelayTakingBytesSlowlyIsCutAfterTheGrace) {
  ASSERT_EQ(::access(SmtpTestServer::kPython, X_OK), 0) << SmtpTestServer::kPython << " is missing";
  MisbehavingRelay relay(MisbehavingRelay::Behaviour::slow_reader);
  std::string body;
  while (body.size() < 60 * 1024) body += "All work and no play makes Jack a dull boy. ";
  const std::int64_t id = create("c1", "email", "ann@example.com",
                                 nlohmann::json{{"subject", "Long read"}, {"body", body}}.dump());
  auto& worker = start_worker(email_env(relay.url()));
  // The message is under way: its headers have arrived, most of its body has not.
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return !key_seen_by(relay).empty(); }, 5ms))
      << all_logs() << relay.received();
  const std::string key = key_seen_by(relay);
  EXPECT_EQ(key.rfind("nudge-" + std::to_string(id) + "-", 0), 0u) << key;

  const auto took = time_to_stop(worker);
  EXPECT_GE(took, kGrace) << "a running delivery gets the grace";
  EXPECT_LE(took, kStopsWithin) << all_logs();
  expect_released(id);
  EXPECT_EQ(leased_by(worker.pid()), 0);

  SmtpTestServer server(dir_, "accept");
  std::string why;
  ASSERT_TRUE(server.wait_ready(why)) << why;
  start_worker(email_env(server.url()));
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  expect_delivered_once(id);
  const auto messages = server.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(smtp_header(messages[0], "idempotency-key"), key);
  EXPECT_EQ(smtp_header(messages[0], "x-nudge-attempt"), "1");
  EXPECT_EQ(messages[0]["body"], body);
}

}  // namespace
}  // namespace nudge::test
