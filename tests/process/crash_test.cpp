// Workers that die or are told to stop: nothing is lost, nothing is recorded twice.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "process/process_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

using Crash = ProcessTest;

TEST_F(Crash, KilledWorkerLosesNothing) {
  insert_due(3000);
  // Tiny batches keep the first worker busy long enough to be caught holding leases.
  auto& doomed =
      start_worker({{"NUDGE_WORKER_BATCH_SIZE", "5"}, {"NUDGE_WORKER_LEASE_SECONDS", "5"}});

  // Freeze it while it holds leases, then kill -9: those rows are claimed and never finished.
  long held = 0;
  ASSERT_TRUE(wait_until(
      kSlow,
      [&] {
        if (leased_by(doomed.pid()) == 0) return false;
        doomed.signal(SIGSTOP);
        // A claim or finish it sent just before freezing may still commit (a loaded CI run
        // counted 5 held rows, then found 10 rescued): count once none of its connections runs
        // a statement and the count holds still.
        long settled = -1;
        held = leased_by(doomed.pid());
        for (int round = 0;
             round < 50 && (held != settled || running_statements_of(doomed.pid()) > 0); ++round) {
          settled = held;
          std::this_thread::sleep_for(200ms);
          held = leased_by(doomed.pid());
        }
        if (held == 0) doomed.signal(SIGCONT);
        return held > 0;
      },
      1ms))
      << doomed.log();
  doomed.signal(SIGKILL);
  ASSERT_TRUE(doomed.wait(kSlow).has_value());
  const long recorded_before = executions();
  ASSERT_LT(recorded_before, 3000) << "the worker finished everything before it could be killed";

  // The rescuer takes the rest, including the orphaned rows once their lease runs out.
  start_worker({{"NUDGE_WORKER_LEASE_SECONDS", "5"}});
  ASSERT_TRUE(wait_for_executions(3000)) << all_logs();
  EXPECT_EQ(value<long>("SELECT count(DISTINCT reminder_id) FROM nudge.executions"), 3000);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status <> 'COMPLETED' OR "
                        "leased_by IS NOT NULL"),
            0);
  // A rescued fire counts as an attempt: the orphaned occurrences took two claims.
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE attempts = 2"), held);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE attempts NOT IN (1, 2)"), 0);
  // Every reminder was delivered at least once; re-deliveries are the orphaned ones only.
  const auto keys = delivered_keys();
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 3000u);
  EXPECT_LE(keys.size(), 3000u + static_cast<std::size_t>(held));
}

// A reminder stopped (cancelled, or completed by its flag) while a worker that then dies holds
// it: no claim takes a stopped reminder, so the dead worker's lease stayed on it for good and
// its occurrence, perhaps delivered, was recorded nowhere (explore14b #3). Once the lease
// expires a live worker records it, once, as abandoned, and lets the lease go.
TEST_F(Crash, AnOccurrenceStoppedUnderADeadWorkersLeaseIsRecordedOnce) {
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
      "next_run_at, stop_condition_type, stop_condition_value) SELECT 'proc', g::text, 'due', "
      "'log', 'one_time', now(), 'db_check', 'done:' || g FROM generate_series(1, 300) g");
  auto& doomed =
      start_worker({{"NUDGE_WORKER_BATCH_SIZE", "5"}, {"NUDGE_WORKER_LEASE_SECONDS", "5"}});
  ASSERT_TRUE(wait_until(
      kSlow,
      [&] {
        if (leased_by(doomed.pid()) == 0) return false;
        doomed.signal(SIGSTOP);
        std::this_thread::sleep_for(300ms);  // a statement sent before the stop commits
        if (leased_by(doomed.pid()) > 0 && running_statements_of(doomed.pid()) == 0) return true;
        doomed.signal(SIGCONT);
        return false;
      },
      1ms))
      << doomed.log();
  // Half by a flag, half cancelled, as the application and an operator would.
  const auto held = value<std::string>(
      "SELECT string_agg(id::text, ',' ORDER BY id) FROM nudge.reminders WHERE leased_by LIKE $1",
      "%:" + std::to_string(doomed.pid()) + ":%");
  sql("SELECT nudge.set_flag(stop_condition_value, true) FROM nudge.reminders "
      "WHERE id = ANY (string_to_array($1, ',')::bigint[]) AND id % 2 = 0",
      held);
  sql("SELECT nudge.cancel_reminder(id) FROM nudge.reminders "
      "WHERE id = ANY (string_to_array($1, ',')::bigint[]) AND id % 2 = 1",
      held);
  doomed.signal(SIGKILL);
  ASSERT_TRUE(doomed.wait(kSlow).has_value());

  start_worker({{"NUDGE_WORKER_LEASE_SECONDS", "5"}});
  const std::string recorded =
      "SELECT count(*) FROM nudge.executions e WHERE e.reminder_id = "
      "ANY (string_to_array($1, ',')::bigint[]) AND e.outcome = 'failed' AND e.error LIKE "
      "'abandoned: the worker delivering it stopped before recording the outcome%'";
  const long stopped = static_cast<long>(std::count(held.begin(), held.end(), ',') + 1);
  ASSERT_TRUE(wait_until(kSlow, [&] { return value<long>(recorded, held) == stopped; }))
      << value<long>(recorded, held) << " of " << stopped << "\n"
      << all_logs();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by IS NOT NULL AND "
                        "status <> 'ACTIVE'"),
            0);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.stopped_while_leased"), 0);
  // Each once: every reminder has one execution (the 300 - stopped others were delivered).
  ASSERT_TRUE(wait_for_executions(300)) << all_logs();
  EXPECT_EQ(value<long>("SELECT count(*) - count(DISTINCT reminder_id) FROM nudge.executions"), 0);
  EXPECT_EQ(value<std::string>("SELECT string_agg(DISTINCT status || '/' || completed_reason, "
                               "',') FROM nudge.reminders WHERE id = ANY "
                               "(string_to_array($1, ',')::bigint[])",
                               held),
            stopped > 1 ? "CANCELLED/cancelled,COMPLETED/stop_condition" : "CANCELLED/cancelled");
}

// A worker stopped (SIGSTOP, a paused VM) after its claim reached the database and before it
// started the deliveries starts none of them when it runs again: their leases ran out meanwhile
// and another worker delivered them (explore16a #2: 2,000 log lines written again 52 s late,
// after their reminders were cancelled too). It gives back what it still holds.
TEST_F(Crash, AWorkerStoppedBetweenItsClaimAndItsDeliveriesStartsNoneOfThemLate) {
  constexpr int kDue = 20;
  // A claim that takes 2 s (0.1 s a row leased), so the worker can be stopped while it runs.
  sql("CREATE FUNCTION public.slow_lease() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN PERFORM pg_sleep(0.1); RETURN NEW; END $$");
  sql("CREATE TRIGGER slow_lease BEFORE UPDATE ON nudge.reminders FOR EACH ROW WHEN "
      "(NEW.leased_by IS NOT NULL AND OLD.leased_by IS NULL) EXECUTE FUNCTION public.slow_lease()");
  // One claim loop: with two, one could claim, deliver and finish a row before the other's slow
  // claim was seen and the worker stopped (a loaded CI run counted 19 leased of 20 for ever).
  const std::map<std::string, std::string> lease{{"NUDGE_WORKER_LEASE_SECONDS", "5"},
                                                 {"NUDGE_WORKER_CONCURRENCY", "1"}};
  auto& frozen = start_worker(lease);
  insert_due(kDue, "late");
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return value<long>(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
               "state = 'active' AND query LIKE '%finish_and_claim%' AND pid <> pg_backend_pid()") >
           0;
  })) << frozen.log();
  frozen.signal(SIGSTOP);  // the claim goes on, for a worker that does not run
  ASSERT_TRUE(wait_until(
      kSlow,
      [&] {
        return value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by IS NOT NULL") ==
               kDue;
      }))
      << value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by IS NOT NULL")
      << " leased, " << executions() << " delivered\n"
      << frozen.log();
  sql("DROP TRIGGER slow_lease ON nudge.reminders");
  std::this_thread::sleep_for(5500ms);  // past the leases
  start_worker(lease);
  ASSERT_TRUE(wait_for_executions(kDue)) << all_logs();
  frozen.signal(SIGCONT);
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return frozen.log().find("their leases ran out first") != std::string::npos;
  })) << frozen.log();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(frozen.log().find(R"("entity_type":"late")"), std::string::npos) << frozen.log();
  EXPECT_EQ(executions(), kDue);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by IS NOT NULL"), 0);
}

TEST_F(Crash, SigtermFinishesInFlightAndReleasesLeases) {
  insert_due(20000);
  auto& w =
      start_worker({{"NUDGE_WORKER_BATCH_SIZE", "100"}, {"NUDGE_WORKER_LEASE_SECONDS", "300"}});
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return executions() > 0; }, 1ms))
      << w.log();
  w.signal(SIGTERM);
  EXPECT_EQ(w.wait(kSlow), 0) << w.log();

  // Whatever it delivered is recorded; whatever it still held is free at once (lease 300 s).
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by IS NOT NULL"), 0);
  const auto keys = delivered_keys();
  EXPECT_EQ(static_cast<long>(keys.size()), executions());
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'COMPLETED'"),
            executions());
  // A released claim is not an attempt: the next worker fires the rest on their first attempt.
  start_worker();
  ASSERT_TRUE(wait_for_executions(20000)) << all_logs();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE attempts <> 1"), 0);
}

// The reminders named by a worker's "were not recorded" warnings, sorted, comma-separated.
std::string lost_reminders(const std::string& log) {
  static const std::regex warning(
      R"(ended attempts of worker \S+ were not recorded: [^;]*; reminders ([0-9, ]+))");
  std::set<long> ids;
  for (std::sregex_iterator it(log.begin(), log.end(), warning), end; it != end; ++it) {
    std::stringstream list((*it)[1].str());
    for (std::string id; std::getline(list, id, ',');) ids.insert(std::stol(id));
  }
  std::string out;
  for (const long id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

// A worker stopped while its webhooks were in flight, past its leases: another worker delivers
// them, and the first, once it runs again, says that its outcomes were not recorded (it logged
// them as its own failures, and nothing said a lease was lost).
TEST_F(Crash, AWorkerThatLostItsLeasesWhileStoppedSaysItsOutcomesWereNotRecorded) {
  WebhookReceiver receiver;
  // Every answer comes once the worker is stopped, however slowly it sent the requests (shared:
  // a handler may outlive a failed test body).
  const auto stopped_now = std::make_shared<std::atomic<bool>>(false);
  receiver.on("/slow", [stopped_now](int) {
    wait_until(
        kSlow, [&] { return stopped_now->load(); }, 5ms);
    std::this_thread::sleep_for(100ms);
    return 200;
  });
  const std::map<std::string, std::string> env{{"NUDGE_WORKER_LEASE_SECONDS", "5"},
                                               {"NUDGE_WEBHOOK_TIMEOUT_MS", "1000"}};
  auto& stopped = start_worker(env);
  for (int i = 0; i < 2; ++i) {
    sql("SELECT nudge.create_reminder(p_entity_type => 'lease', p_entity_id => $1, "
        "p_event_type => 'lost', p_channel => 'webhook', p_schedule_type => 'one_time', "
        "p_run_at => now(), p_target => $2)",
        std::to_string(i), receiver.url("/slow"));
  }
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return receiver.requests_to("/slow").size() == 2; }, 1ms));
  stopped.signal(SIGSTOP);
  *stopped_now = true;
  std::this_thread::sleep_for(5500ms);  // past the leases
  start_worker(env);
  ASSERT_TRUE(wait_for_executions(2)) << all_logs();
  const auto ids =
      value<std::string>("SELECT string_agg(id::text, ',' ORDER BY id) FROM nudge.reminders");
  stopped.signal(SIGCONT);
  // Its two timeouts may end in one finish ("2 of 2") or in two ("1 of 1" each): both are named.
  ASSERT_TRUE(wait_until(kSlow, [&] { return lost_reminders(stopped.log()) == ids; }))
      << stopped.log();
  EXPECT_NE(stopped.log().find(R"("msg":"the database warned")"), std::string::npos);
  EXPECT_EQ(stopped.log().find("CONTEXT"), std::string::npos) << "one line, not the function's";
  EXPECT_EQ(executions(), 2);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"), 2);
}

}  // namespace
}  // namespace nudge::test
