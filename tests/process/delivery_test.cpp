// Webhook delivery end to end: real nudge-worker processes, a real HTTP receiver on loopback.
// Retries until the receiver accepts, signatures a receiver can check, a hanging receiver that
// holds back nothing else, a worker killed between delivery and finish, attempts running out,
// and addresses looked up in contacts.

#include <signal.h>

#include <atomic>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "process/process_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

constexpr char kSecret[] = "whsec_e2e_0123456789abcdef";

class Delivery : public ProcessTest {
 protected:
  // A webhook reminder created as a user would (nudge.create_reminder); its id.
  std::int64_t create_webhook(const std::string& entity_id, const std::optional<std::string>& url,
                              const std::string& extra = "") {
    return value<std::int64_t>(
        "SELECT (reminder).id FROM nudge.create_reminder(p_entity_type => 'candidate',"
        " p_entity_id => $1, p_event_type => 'interview', p_channel => 'webhook',"
        " p_schedule_type => 'one_time', p_run_at => now(), p_target => $2,"
        " p_payload => '{\"room\": \"B12\"}'" +
            extra + ")",
        entity_id, url);
  }
  std::map<std::string, std::string> fast_retries(
      std::map<std::string, std::string> more = {}) const {
    std::map<std::string, std::string> env{{"NUDGE_WEBHOOK_SECRET", kSecret},
                                           {"NUDGE_RETRY_BASE_DELAY_MS", "200"},
                                           {"NUDGE_RETRY_MAX_DELAY_MS", "400"}};
    for (const auto& [k, v] : more) env[k] = v;
    return env;
  }
  void kill_a_worker_holding_webhooks(bool after_log_lines);
  std::string status_of(std::int64_t id) {
    return value<std::string>("SELECT status FROM nudge.reminders WHERE id = $1", id);
  }

  // A receiver's handler that answers 200 after `wait` (sooner when the receiver stops).
  int answer_after(std::chrono::milliseconds wait) {
    const auto until = std::chrono::steady_clock::now() + wait;
    while (!receiver_.stopping() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(10ms);
    return 200;
  }

  WebhookReceiver receiver_;
};

TEST_F(Delivery, RetriesWithBackoffUntilTheReceiverAccepts) {
  receiver_.on("/flaky", [](int n) { return n <= 2 ? 503 : 200; });
  const std::int64_t id = create_webhook("c1", receiver_.url("/flaky"));
  start_worker(fast_retries());
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();

  const auto got = receiver_.requests_to("/flaky");
  ASSERT_EQ(got.size(), 3u) << all_logs();
  std::set<std::string> keys;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto& r = got[i];
    keys.insert(r.headers.at("idempotency-key"));
    EXPECT_EQ(r.headers.at("nudge-attempt"), std::to_string(i + 1));
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    EXPECT_TRUE(nudge_signature_verifies(r.headers.at("nudge-signature"), kSecret, r.body));
    EXPECT_FALSE(nudge_signature_verifies(r.headers.at("nudge-signature"),
                                          "whsec_wrong_0123456789abcdef", r.body));
    const auto body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["reminder_id"], id);
    EXPECT_EQ(body["entity_id"], "c1");
    EXPECT_EQ(body["attempt"], static_cast<int>(i + 1));
    EXPECT_EQ(body["payload"]["room"], "B12");
    EXPECT_EQ(body["idempotency_key"], r.headers.at("idempotency-key"));
    if (i > 0) {
      // Full jitter under base 200 ms * 2^(n-1), capped at 400 ms; the rest is the worker
      // waking at the due time on a busy machine.
      const auto gap = r.at - got[i - 1].at;
      EXPECT_LE(gap, std::chrono::milliseconds(i == 1 ? 200 : 400) + 3s) << "attempt " << i + 1;
    }
  }
  EXPECT_EQ(keys.size(), 1u) << "the same key on every attempt";

  EXPECT_EQ(status_of(id), "COMPLETED");
  const pqxx::row e =
      sql("SELECT outcome, attempts FROM nudge.executions WHERE reminder_id = $1", id).at(0);
  EXPECT_EQ(e[0].as<std::string>(), "delivered");
  EXPECT_EQ(e[1].as<int>(), 3);
  const pqxx::result attempts = sql(
      "SELECT attempt, outcome, status_code, next_at - attempted_at <= interval '400 ms' + "
      "interval '1 second' FROM (SELECT *, lead(attempted_at) OVER (ORDER BY attempt) AS next_at"
      " FROM nudge.delivery_attempts WHERE reminder_id = $1) a ORDER BY attempt",
      id);
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[0][1].as<std::string>(), "failed");
  EXPECT_EQ(attempts[0][2].as<int>(), 503);
  EXPECT_EQ(attempts[1][1].as<std::string>(), "failed");
  EXPECT_EQ(attempts[2][1].as<std::string>(), "delivered");
  EXPECT_EQ(attempts[2][2].as<int>(), 200);
}

// A rate limit's Retry-After (Slack, Twilio) is waited for: the worker's own backoff (up to
// 200 ms here) would spend every attempt inside the window the receiver asked for.
TEST_F(Delivery, ARetryAfterOfA429IsWaitedFor) {
  receiver_.on("/limited", [](int n) { return n == 1 ? 429 : 200; });
  receiver_.header("/limited", "Retry-After", "2");
  const std::int64_t id = create_webhook("c1", receiver_.url("/limited"));
  start_worker(fast_retries({{"NUDGE_RETRY_MAX_DELAY_MS", "60000"}}));
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  const auto got = receiver_.requests_to("/limited");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_GE(got[1].at - got[0].at, 1900ms) << "the second attempt waited the Retry-After";
  EXPECT_EQ(status_of(id), "COMPLETED");
  EXPECT_EQ(value<std::string>("SELECT error FROM nudge.delivery_attempts WHERE attempt = 1"),
            "HTTP 429 (Retry-After: 2 s)");
}

// A Retry-After past [retry] max_delay_ms is waited for that long only, and the history says so
// beside what was asked (it showed a year's Retry-After as if it were waited for). Seconds past
// what libcurl reads are a year too (explore31d F6: "neither seconds nor a date").
TEST_F(Delivery, ARetryAfterPastTheRetryCapSaysTheWaitIsCapped) {
  receiver_.on("/year", [](int n) { return n == 1 ? 429 : 200; });
  receiver_.header("/year", "Retry-After", "99999999999999999999");
  create_webhook("c1", receiver_.url("/year"));
  start_worker(fast_retries({{"NUDGE_RETRY_MAX_DELAY_MS", "1500"}}));
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  const auto got = receiver_.requests_to("/year");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_LT(got[1].at - got[0].at, 10s);
  EXPECT_EQ(value<std::string>("SELECT error FROM nudge.delivery_attempts WHERE attempt = 1"),
            "HTTP 429 (Retry-After: 31622400 s, taken as a year) (the next attempt waits 1.5 s: "
            "[retry] max_delay_ms)");
}

// A Retry-After that cannot be read is said, not dropped unsaid (explore31a F3).
TEST_F(Delivery, ARetryAfterThatCannotBeReadIsSaid) {
  receiver_.on("/soon", [](int n) { return n == 1 ? 503 : 200; });
  receiver_.header("/soon", "Retry-After", "soon");
  create_webhook("c1", receiver_.url("/soon"));
  start_worker(fast_retries());
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  EXPECT_EQ(value<std::string>("SELECT error FROM nudge.delivery_attempts WHERE attempt = 1"),
            "HTTP 503 (Retry-After \"soon\" not waited for: neither seconds nor a date to come)");
}

// `t` as an HTTP date: "Sun, 06 Dec 2026 13:00:00 GMT".
std::string http_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return text;
}

// A Retry-After date is read against the receiver's own Date: a receiver (or a worker) whose
// clock is an hour off still gets the wait it asked for, not an hour capped at max_delay_ms
// (explore16a #7).
TEST_F(Delivery, ARetryAfterDateIsReadAgainstTheReceiversDate) {
  receiver_.on("/dated", [](int n) { return n == 1 ? 503 : 200; });
  const std::time_t an_hour_ahead = std::time(nullptr) + 3600;
  receiver_.header("/dated", "Date", http_date(an_hour_ahead));
  receiver_.header("/dated", "Retry-After", http_date(an_hour_ahead + 2));
  create_webhook("c1", receiver_.url("/dated"));
  start_worker(fast_retries({{"NUDGE_RETRY_MAX_DELAY_MS", "60000"}}));
  ASSERT_TRUE(wait_for_executions(1, 30s)) << all_logs();
  const auto got = receiver_.requests_to("/dated");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_GE(got[1].at - got[0].at, 900ms);
  EXPECT_LT(got[1].at - got[0].at, 10s);
  EXPECT_EQ(value<std::string>("SELECT error FROM nudge.delivery_attempts WHERE attempt = 1"),
            "HTTP 503 (Retry-After: 2 s)");
}

// A fire's log line stays whole in a file the worker's own records share, as run.sh writes both
// to .run/worker-N.log: stdio wrote its buffer out when full, mid-line, and records written to
// stderr in between cut fire lines in two (explore16b #2: 60 of 31,500 lines).
TEST_F(Delivery, LogLinesStayWholeInAFileTheWorkersRecordsShare) {
  constexpr int kLines = 5000;
  // Each failed attempt is a record on stderr while the log lines are written.
  receiver_.on("/down", [](int) { return 500; });
  for (int i = 0; i < 50; ++i)
    create_webhook("down" + std::to_string(i), receiver_.url("/down"), ", p_max_attempts => 3");
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
      "next_run_at, payload) SELECT 'whole', g::text, 'due', 'log', 'one_time', now(), "
      "jsonb_build_object('text', repeat('x', g % 300)) FROM generate_series(1, $1) g",
      kLines);
  const std::string merged = (dir_ / "merged.log").string();
  std::vector<std::string> argv{"/bin/sh", "-c", "exec \"$@\" >>'" + merged + "' 2>&1", "sh"};
  for (const auto& arg : worker_command()) argv.push_back(arg);
  ChildProcess worker(argv,
                      worker_env(db_.url(), fast_retries({{"NUDGE_LOG_LEVEL", "info"},
                                                          {"NUDGE_BREAKER_FAILURES", "0"}})),
                      (dir_ / "sh.log").string());
  ASSERT_TRUE(wait_until(kSlow, [&] { return executions() >= kLines + 50; })) << worker.log();
  worker.signal(SIGTERM);
  ASSERT_TRUE(wait_until(kSlow, [&] { return !worker.running(); }));
  std::ifstream in(merged);
  int whole = 0;
  int broken = 0;
  for (std::string line; std::getline(in, line);) {
    if (!nlohmann::json::accept(line)) {
      if (++broken <= 3) ADD_FAILURE() << "not a JSON line: " << line.substr(0, 200);
    } else if (line.find(R"("entity_type":"whole")") != std::string::npos) {
      ++whole;
    }
  }
  EXPECT_EQ(broken, 0);
  EXPECT_EQ(whole, kLines);
}

TEST_F(Delivery, AHangingReceiverTimesOutWhileOthersAreDelivered) {
  receiver_.on("/hang", [this](int) { return answer_after(20s); });
  const std::int64_t hung = create_webhook("hung", receiver_.url("/hang"), ", p_max_attempts => 1");
  for (int i = 0; i < 50; ++i) create_webhook("fast" + std::to_string(i), receiver_.url("/fast"));
  // 6 s: room for 50 deliveries by a sanitizer build on a loaded 2-core machine.
  start_worker(
      fast_retries({{"NUDGE_WEBHOOK_TIMEOUT_MS", "6000"}, {"NUDGE_WORKER_CONCURRENCY", "1"}}));

  // Every fast delivery is recorded while the hanging one still waits for its answer.
  ASSERT_TRUE(wait_for_executions(50)) << all_logs();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE reminder_id = $1", hung), 0);
  ASSERT_TRUE(wait_for_executions(51)) << all_logs();
  const pqxx::row e =
      sql("SELECT outcome, error FROM nudge.executions WHERE reminder_id = $1", hung).at(0);
  EXPECT_EQ(e[0].as<std::string>(), "failed");
  EXPECT_NE(e[1].as<std::string>().find("Timeout"), std::string::npos) << e[1].as<std::string>();
  EXPECT_EQ(status_of(hung), "FAILED");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"), 50);
  const auto hang_at = receiver_.requests_to("/hang").at(0).at;
  for (const auto& r : receiver_.requests_to("/fast")) EXPECT_LT(r.at, hang_at + 6s);
}

// A reminder's own request may wait longer (or less) for its answer than [webhook] timeout_ms:
// a handler slower than the workers' timeout was called again on every attempt and the
// reminder ended failed (explore18b #4).
TEST_F(Delivery, ARequestsOwnTimeoutReplacesTheWorkers) {
  receiver_.on("/slow", [this](int) { return answer_after(1500ms); });
  const std::int64_t patient =
      create_webhook("patient", receiver_.url("/slow"),
                     ", p_max_attempts => 1, p_request => '{\"timeout_ms\": 20000}'");
  const std::int64_t hasty =
      create_webhook("hasty", receiver_.url("/slow"), ", p_max_attempts => 1, p_request => '{}'");
  start_worker(fast_retries({{"NUDGE_WEBHOOK_TIMEOUT_MS", "300"}}));
  ASSERT_TRUE(wait_for_executions(2)) << all_logs();
  EXPECT_EQ(status_of(patient), "COMPLETED");
  EXPECT_EQ(status_of(hasty), "FAILED");
  EXPECT_NE(value<std::string>("SELECT error FROM nudge.executions WHERE reminder_id = $1", hasty)
                .find("Timeout"),
            std::string::npos);
  EXPECT_EQ(receiver_.requests_to("/slow").size(), 2u);
}

TEST_F(Delivery, AtMostDeliveriesInFlightRunAtOnceAndAllArrive) {
  std::atomic<int> now{0};
  std::atomic<int> most{0};
  receiver_.on("/slow", [&](int) {
    const int in = ++now;
    for (int seen = most; in > seen && !most.compare_exchange_weak(seen, in);) {
    }
    std::this_thread::sleep_for(50ms);
    --now;
    return 200;
  });
  for (int i = 0; i < 40; ++i) create_webhook("c" + std::to_string(i), receiver_.url("/slow"));
  start_worker(fast_retries(
      {{"NUDGE_WORKER_DELIVERIES_IN_FLIGHT", "4"}, {"NUDGE_WORKER_CONCURRENCY", "1"}}));
  ASSERT_TRUE(wait_for_executions(40)) << all_logs();
  EXPECT_EQ(receiver_.requests_to("/slow").size(), 40u);
  EXPECT_LE(most.load(), 4);
  EXPECT_GE(most.load(), 2) << "deliveries overlap";
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"), 40);
}

TEST_F(Delivery, AWorkerKilledBetweenDeliveryAndFinishRedeliversWithTheSameKey) {
  std::atomic<bool> release{false};
  receiver_.on("/ack", [&](int n) {
    // The first delivery arrives, then the worker dies before it hears back.
    while (n == 1 && !release && !receiver_.stopping()) std::this_thread::sleep_for(5ms);
    return 200;
  });
  const std::int64_t id = create_webhook("c1", receiver_.url("/ack"));
  auto& doomed = start_worker(fast_retries({{"NUDGE_WORKER_LEASE_SECONDS", "5"}}));
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return !receiver_.requests_to("/ack").empty(); }, 5ms))
      << all_logs();
  doomed.signal(SIGKILL);
  ASSERT_TRUE(doomed.wait(kSlow).has_value());
  release = true;
  EXPECT_EQ(executions(), 0);

  start_worker(fast_retries({{"NUDGE_WORKER_LEASE_SECONDS", "5"}}));
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  const auto got = receiver_.requests_to("/ack");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].headers.at("idempotency-key"), got[1].headers.at("idempotency-key"));
  EXPECT_EQ(got[0].headers.at("nudge-attempt"), "1");
  EXPECT_EQ(got[1].headers.at("nudge-attempt"), "2");
  const pqxx::row e =
      sql("SELECT outcome, attempts FROM nudge.executions WHERE reminder_id = $1", id).at(0);
  EXPECT_EQ(e[0].as<std::string>(), "delivered");
  EXPECT_EQ(e[1].as<int>(), 2);
}

// A claim counts an attempt for each row it takes: a loop takes no more webhooks than it can
// send at once, so a crash charges an attempt only to what was on its way (it used to hold a
// whole batch, and one kill -9 failed hundreds of max_attempts 1 reminders never sent). With
// `after_log_lines`, the loop's claims had brought only log lines, which it claims by the batch.
void Delivery::kill_a_worker_holding_webhooks(bool after_log_lines) {
  std::atomic<bool> release{false};
  receiver_.on("/held", [&](int) {
    while (!release && !receiver_.stopping()) std::this_thread::sleep_for(5ms);
    return 200;
  });
  auto& doomed = start_worker(fast_retries({{"NUDGE_WORKER_DELIVERIES_IN_FLIGHT", "4"},
                                            {"NUDGE_WORKER_CONCURRENCY", "1"},
                                            {"NUDGE_WORKER_LEASE_SECONDS", "5"}}));
  if (after_log_lines) {
    for (int i = 0; i < 3; ++i) {
      sql("SELECT nudge.create_reminder(p_entity_type => 'candidate', p_entity_id => $1,"
          " p_event_type => 'note', p_channel => 'log', p_schedule_type => 'one_time',"
          " p_run_at => now())",
          "l" + std::to_string(i));
    }
    ASSERT_TRUE(wait_for_executions(3)) << all_logs();
  }
  sql("SELECT nudge.create_reminders(jsonb_agg(jsonb_build_object('entity_type', 'candidate',"
      " 'entity_id', 'k' || g, 'event_type', 'interview', 'channel', 'webhook',"
      " 'schedule_type', 'one_time', 'run_at', now(), 'target', $1::text, 'max_attempts', 1)))"
      " FROM generate_series(0, 199) g",
      receiver_.url("/held"));
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return receiver_.requests_to("/held").size() >= 4; }, 5ms))
      << all_logs();
  EXPECT_EQ(leased_by(doomed.pid()), 4) << "claimed as many as it sends";
  doomed.signal(SIGKILL);
  ASSERT_TRUE(doomed.wait(kSlow).has_value());
  release = true;

  start_worker(fast_retries({{"NUDGE_WORKER_LEASE_SECONDS", "5"}}));
  const int logs = after_log_lines ? 3 : 0;
  ASSERT_TRUE(wait_for_executions(200 + logs)) << all_logs();
  // The four it had sent are the only ones abandoned (not sent again: their one attempt was
  // used); every other one went out once, on its first attempt.
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'FAILED' "
                        "AND last_error LIKE 'abandoned%'"),
            4);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"),
            196 + logs);
  EXPECT_EQ(receiver_.requests_to("/held").size(), 200u);
}

TEST_F(Delivery, AKilledWorkerChargesAnAttemptOnlyToWhatItHadSent) {
  kill_a_worker_holding_webhooks(false);
}

TEST_F(Delivery, AfterLogLinesAKilledWorkerStillChargesOnlyWhatItHadSent) {
  kill_a_worker_holding_webhooks(true);
}

TEST_F(Delivery, ExhaustedAttemptsFailAOneTimeAndMoveARecurringOn) {
  receiver_.on("/down", [](int) { return 500; });
  const std::int64_t once = create_webhook("once", receiver_.url("/down"), ", p_max_attempts => 2");
  const std::int64_t every = value<std::int64_t>(
      "SELECT (reminder).id FROM nudge.create_reminder(p_entity_type => 'candidate',"
      " p_entity_id => 'every', p_event_type => 'interview', p_channel => 'webhook',"
      " p_schedule_type => 'recurring', p_interval_seconds => 3600, p_run_at => now(),"
      " p_target => $1, p_max_attempts => 2)",
      receiver_.url("/down"));
  start_worker(fast_retries());
  ASSERT_TRUE(wait_for_executions(2)) << all_logs();

  EXPECT_EQ(status_of(once), "FAILED");
  EXPECT_EQ(value<std::string>("SELECT last_error FROM nudge.reminders WHERE id = $1", once),
            "HTTP 500");
  EXPECT_EQ(status_of(every), "ACTIVE");
  EXPECT_TRUE(value<bool>(
      "SELECT r.next_run_at = e.scheduled_for + interval '1 hour' AND r.occurrence_at IS NULL"
      " FROM nudge.reminders r JOIN nudge.executions e ON e.reminder_id = r.id WHERE r.id = $1",
      every));
  EXPECT_EQ(value<long>(
                "SELECT count(*) FROM nudge.executions WHERE outcome = 'failed' AND attempts = 2"),
            2);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.delivery_attempts"), 4);
  EXPECT_EQ(receiver_.requests_to("/down").size(), 4u);
}

TEST_F(Delivery, RemindersWithoutATargetGoToTheirContactAddress) {
  sql("SELECT nudge.put_contact('candidate', 'c1', 'webhook', $1)", receiver_.url("/contact"));
  const std::int64_t known = create_webhook("c1", std::nullopt);
  const std::int64_t unknown = create_webhook("c2", std::nullopt, ", p_max_attempts => 1");
  start_worker(fast_retries());
  ASSERT_TRUE(wait_for_executions(2)) << all_logs();

  EXPECT_EQ(status_of(known), "COMPLETED");
  const auto got = receiver_.requests_to("/contact");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(got[0].body)["entity_id"], "c1");
  EXPECT_EQ(status_of(unknown), "FAILED");
  const std::string error =
      value<std::string>("SELECT last_error FROM nudge.reminders WHERE id = $1", unknown);
  EXPECT_NE(error.find("no address"), std::string::npos) << error;
  EXPECT_NE(error.find("candidate/c2"), std::string::npos) << error;
}

}  // namespace
}  // namespace nudge::test
