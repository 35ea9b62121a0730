// The circuit breaker end to end: two real nudge-worker processes share one breaker through the
// database while a real receiver is down, then up. Nothing is lost, deliveries held while the
// breaker is open use no attempts, and one probe at a time goes out.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "process/process_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

class Breaker : public ProcessTest {
 protected:
  std::int64_t create_webhook(const std::string& entity_id, const std::string& path) {
    return value<std::int64_t>(
        "SELECT (reminder).id FROM nudge.create_reminder(p_entity_type => 'candidate',"
        " p_entity_id => $1, p_event_type => 'interview', p_channel => 'webhook',"
        " p_schedule_type => 'one_time', p_run_at => now(), p_target => $2)",
        entity_id, receiver_.url(path));
  }
  // Three failures open the breaker for 1 s, and a failed probe opens it again for 1 s (the
  // cap), so probes come once a second; five attempts per occurrence (the first reminders'
  // quick retries may beat the opening), fast retries.
  std::map<std::string, std::string> settings() const {
    return {{"NUDGE_BREAKER_FAILURES", "3"},         {"NUDGE_BREAKER_OPEN_SECONDS", "1"},
            {"NUDGE_BREAKER_MAX_OPEN_SECONDS", "1"}, {"NUDGE_RETRY_MAX_ATTEMPTS", "5"},
            {"NUDGE_RETRY_BASE_DELAY_MS", "50"},     {"NUDGE_RETRY_MAX_DELAY_MS", "100"}};
  }
  long log_lines_with(const std::string& text) const {
    const std::string logs = all_logs();
    long n = 0;
    for (auto at = logs.find(text); at != std::string::npos; at = logs.find(text, at + 1)) ++n;
    return n;
  }
  // Log lines holding both texts.
  long log_lines_with_both(const std::string& a, const std::string& b) const {
    long n = 0;
    std::istringstream logs(all_logs());
    for (std::string line; std::getline(logs, line);)
      if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) ++n;
    return n;
  }
  long attempts_of_held(const std::string& condition) {
    return value<long>(
        "SELECT count(*) FROM nudge.reminders r WHERE r.entity_id LIKE 'held%' AND (SELECT "
        "count(*) FROM nudge.delivery_attempts a WHERE a.reminder_id = r.id) " +
        condition);
  }

  WebhookReceiver receiver_;
};

TEST_F(Breaker, AReceiverDownThenUpLosesNothingAndBurnsNoAttemptsWhileOpen) {
  using Clock = std::chrono::steady_clock;
  constexpr int kEarly = 3, kHeld = 17;
  std::atomic<bool> up{false};
  // One host, two paths: the first reminders open the breaker, the rest come while it is open.
  receiver_.on("/early", [&](int) { return up ? 200 : 503; });
  receiver_.on("/held", [&](int) { return up ? 200 : 503; });
  start_worker(settings());
  start_worker(settings());
  for (int i = 0; i < kEarly; ++i) create_webhook("early" + std::to_string(i), "/early");
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return value<long>("SELECT count(*) FROM nudge.target_hosts WHERE state = 'open'") == 1;
  })) << all_logs();

  // Down, with the breaker open: the new reminders are held; one probe a second goes out.
  for (int i = 0; i < kHeld; ++i) create_webhook("held" + std::to_string(i), "/held");
  ASSERT_TRUE(wait_until(kSlow, [&] { return receiver_.requests_to("/held").size() >= 3; }))
      << all_logs();
  up = true;
  const auto up_at = Clock::now();
  ASSERT_TRUE(wait_for_executions(kEarly + kHeld)) << all_logs();

  // Nothing lost: every reminder delivered, none failed.
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"),
            kEarly + kHeld);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'COMPLETED'"),
            kEarly + kHeld);

  // One probe at a time: from the first probe until the receiver came up, requests (to either
  // path) came one by one, an open time apart (0.8 to 1.2 times it), though two workers were
  // claiming.
  std::vector<Clock::time_point> down;
  const auto first_probe = receiver_.requests_to("/held").at(0).at;
  for (const auto& r : receiver_.requests())
    if (r.at >= first_probe && r.at < up_at) down.push_back(r.at);
  std::sort(down.begin(), down.end());
  ASSERT_GE(down.size(), 2u);
  for (std::size_t i = 1; i < down.size(); ++i)
    EXPECT_GE(down[i] - down[i - 1], 700ms) << "request " << i << " while open came too soon";

  const long failed_probes = static_cast<long>(down.size()) - 1;  // the last may have succeeded
  // No attempts burned while open: every attempt of a held reminder was a request the receiver
  // saw (its delivery, or a probe; one reminder may be probed twice, ci197), and each has one.
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.delivery_attempts a JOIN nudge.reminders r "
                        "ON r.id = a.reminder_id WHERE r.entity_id LIKE 'held%'"),
            static_cast<long>(receiver_.requests_to("/held").size()));
  EXPECT_EQ(attempts_of_held(">= 1"), kHeld);

  // The breaker closed, and the workers that changed it logged each change once. A worker logs
  // a change after the statement that made it returns, so its line may follow the executions.
  EXPECT_EQ(value<std::string>("SELECT state FROM nudge.target_hosts"), "closed");
  EXPECT_TRUE(wait_until(kSlow, [&] { return log_lines_with(R"("to":"closed")") >= 1; }))
      << all_logs();
  EXPECT_GE(log_lines_with(R"("to":"open")"), failed_probes + 1) << all_logs();
  EXPECT_GE(log_lines_with(R"("to":"probing")"), failed_probes + 1) << all_logs();
  EXPECT_EQ(log_lines_with(R"("to":"closed")"), 1) << all_logs();
  // A failed attempt's line names the host as the breaker's lines do (explore18a #2).
  const std::string host = value<std::string>("SELECT host FROM nudge.target_hosts");
  EXPECT_GE(
      log_lines_with_both(R"("msg":"delivery attempt failed")", R"("host":")" + host + R"(")"),
      failed_probes + kEarly)
      << all_logs();
  // And each opening says why: the last failed attempt's error.
  EXPECT_GE(log_lines_with_both(R"("to":"open")", R"("last_error":"HTTP 503)"), failed_probes + 1)
      << all_logs();
}

// A receiver away for a few seconds (a deploy, a restart), with one reminder due: its tries find
// nobody listening, which uses none of its 3 attempts, until the breaker opens at the 5th and
// a probe finds the receiver back. It failed for good within a second (explore31a F1).
TEST_F(Breaker, AReceiverAwayForSecondsFailsNoReminder) {
  const int port = free_tcp_port();
  start_worker({{"NUDGE_BREAKER_OPEN_SECONDS", "1"},
                {"NUDGE_BREAKER_MAX_OPEN_SECONDS", "1"},
                {"NUDGE_RETRY_BASE_DELAY_MS", "50"},
                {"NUDGE_RETRY_MAX_DELAY_MS", "100"}});
  const auto id = value<std::int64_t>(
      "SELECT (reminder).id FROM nudge.create_reminder(p_entity_type => 'candidate',"
      " p_entity_id => 'away', p_event_type => 'interview', p_channel => 'webhook',"
      " p_schedule_type => 'one_time', p_run_at => now(), p_target => $1)",
      "http://127.0.0.1:" + std::to_string(port) + "/hook");
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE reminder_id = $1", id) >=
           5;
  })) << all_logs();
  EXPECT_EQ(value<std::string>("SELECT status FROM nudge.reminders WHERE id = $1", id), "ACTIVE");
  const auto first_error = value<std::string>(
      "SELECT error FROM nudge.delivery_attempts WHERE reminder_id = $1 AND attempt = 1", id);
  EXPECT_NE(first_error.find("(the host could not be reached: this try uses none of the "
                             "occurrence's attempts)"),
            std::string::npos)
      << first_error;
  WebhookReceiver back(port);
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  EXPECT_EQ(value<std::string>("SELECT outcome FROM nudge.executions WHERE reminder_id = $1", id),
            "delivered");
  EXPECT_EQ(back.requests_to("/hook").size(), 1u);
}

// A heartbeat during a slow probe moves the breaker's probe time and, with it, the deliveries
// the breaker holds, which its answer looks up by that time: the probe's success releases them
// (in doubling waves a second apart). They waited for the probe's first lease to run out
// (explore16a #6: 27 s).
TEST_F(Breaker, ASlowProbesSuccessReleasesTheHeldDeliveries) {
  std::atomic<bool> up{false};
  receiver_.on("/early", [&](int) { return up ? 200 : 503; });
  receiver_.on("/held", [&](int) {
    if (!up) return 503;
    std::this_thread::sleep_for(4s);  // longer than a heartbeat's period (10 s / 3)
    return 200;
  });
  auto env = settings();
  env["NUDGE_WORKER_LEASE_SECONDS"] = "10";
  start_worker(env);
  for (int i = 0; i < 3; ++i) create_webhook("early" + std::to_string(i), "/early");
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return value<long>("SELECT count(*) FROM nudge.target_hosts WHERE state = 'open'") == 1;
  })) << all_logs();
  up = true;
  for (int i = 0; i < 4; ++i) create_webhook("held" + std::to_string(i), "/held");
  ASSERT_TRUE(wait_for_executions(7)) << all_logs();
  const auto held = receiver_.requests_to("/held");
  ASSERT_EQ(held.size(), 4u);
  // The first is the probe, answered 4 s after it came; the rest come once it is answered (the
  // second wave a second later), not when its first lease (10 s) runs out.
  for (std::size_t i = 1; i < held.size(); ++i)
    EXPECT_LT(held[i].at - held[0].at, 7500ms) << "held delivery " << i;
}

// libcurl checks a transfer's timeout before it reads, so a worker stopped while answers arrive
// finds them timed out when it runs again: the receiver is not to blame, and one such attempt
// (of a worker stopped 15 s) opened the breaker on a healthy host for every worker.
TEST_F(Breaker, TimeoutsOfAWorkerThatWasStoppedDoNotOpenTheBreaker) {
  // Every answer comes once the worker is stopped, however slowly it sent the requests.
  // Shared: a handler may outlive a failed test body.
  const auto stopped = std::make_shared<std::atomic<bool>>(false);
  receiver_.on("/ok", [stopped](int) {
    wait_until(
        kSlow, [&] { return stopped->load(); }, 5ms);
    std::this_thread::sleep_for(100ms);
    return 200;
  });
  auto env = settings();
  env["NUDGE_BREAKER_FAILURES"] = "1";
  env["NUDGE_WEBHOOK_TIMEOUT_MS"] = "1000";
  auto& worker = start_worker(env);
  for (int i = 0; i < 3; ++i) create_webhook("paused" + std::to_string(i), "/ok");
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return receiver_.requests_to("/ok").size() == 3; }, 1ms));
  worker.signal(SIGSTOP);  // the answers come while it does not run
  *stopped = true;
  std::this_thread::sleep_for(4s);  // past the 1 s timeout by more than 2 s
  worker.signal(SIGCONT);
  ASSERT_TRUE(wait_for_executions(3)) << all_logs();

  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"), 3);
  EXPECT_EQ(log_lines_with("circuit breaker changed state"), 0)
      << "the breaker opened on a host that answered every request\n"
      << all_logs();
  const auto late = value<long>(
      "SELECT count(*) FROM nudge.delivery_attempts WHERE outcome = 'failed' "
      "AND error LIKE '%this worker was paused or starved meanwhile%'");
  EXPECT_EQ(late, 3) << all_logs();
}

}  // namespace
}  // namespace nudge::test
