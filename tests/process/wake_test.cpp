// An idle worker sleeps until the database says something is due and wakes on NOTIFY for new
// work; a flag flipped with plain SQL stops a recurring reminder under a running worker.

#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "process/process_fixture.hpp"

namespace nudge::test {
namespace {

using Wake = ProcessTest;

TEST_F(Wake, IdleWorkerWakesOnNotifyAndAtDueTime) {
  // The idle cap is 300 s (worker_env): any prompt fire below is a wake-up, not a poll.
  auto& w = start_worker();
  ASSERT_TRUE(wait_until(kSlow, [&] {
    // Asleep: its last statement asked when the next reminder is due.
    return value<long>(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
               "AND state = 'idle' AND query LIKE '%nudge.seconds_until_due%'") > 0;
  })) << w.log();

  // Inserted while it sleeps: NOTIFY wakes it.
  sql("SELECT nudge.create_reminder(p_entity_type => 'u', p_entity_id => 'now', "
      "p_event_type => 'e', p_channel => 'log', p_schedule_type => 'one_time', p_run_at => now())");
  ASSERT_TRUE(wait_until(10s, [&] { return executions() == 1; })) << w.log();

  // Due in two seconds: it wakes at the due time, not at the end of its idle cap.
  sql("SELECT nudge.create_reminder(p_entity_type => 'u', p_entity_id => 'soon', "
      "p_event_type => 'e', p_channel => 'log', p_schedule_type => 'one_time', "
      "p_run_at => now() + interval '2 seconds')");
  ASSERT_TRUE(wait_until(30s, [&] { return executions() == 2; })) << w.log();
  const double late_ms = value<double>(
      "SELECT extract(epoch FROM fired_at - scheduled_for) * 1000 FROM nudge.executions e "
      "JOIN nudge.reminders r ON r.id = e.reminder_id WHERE r.entity_id = 'soon'");
  EXPECT_GE(late_ms, 0.0);
  EXPECT_LT(late_ms, 1000.0) << "fired " << late_ms << " ms after its due time";
}

// CPU clock ticks (user + system) process `pid` has used.
long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces) are counted from its closing parenthesis:
  // utime and stime are the 14th and 15th.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long ticks = 0;
  for (int n = 3; n <= 15 && rest >> field; ++n)
    if (n >= 14) ticks += std::stol(field);
  return ticks;
}

// A due row that another session holds (an application's transaction left open on it) is
// skipped by every claim: the worker asks again at a falling rate, not every 2 ms (explore16a
// #3: 12 idle workers spun at 12,000 claims a second), and takes it soon after it is let go.
TEST_F(Wake, ADueRowAnotherSessionHoldsIsNotSpunOn) {
  auto& w = start_worker();
  sql("SELECT nudge.create_reminder(p_entity_type => 'u', p_entity_id => 'held', "
      "p_event_type => 'e', p_channel => 'log', p_schedule_type => 'one_time', "
      "p_run_at => now() + interval '1 second')");
  pqxx::connection holder(db_.url());
  auto lock = std::make_unique<pqxx::work>(holder);
  lock->exec("SELECT id FROM nudge.reminders FOR UPDATE");
  std::this_thread::sleep_for(1500ms);  // due now, and held
  // The worker's and its sessions' (their backends do the claims' work).
  const auto ticks = [&] {
    long sum = cpu_ticks(w.pid());
    for (const auto& row : sql("SELECT pid FROM pg_stat_activity WHERE datname = "
                               "current_database() AND backend_type = 'client backend' AND "
                               "pid NOT IN (pg_backend_pid(), $1)",
                               holder.backendpid()))
      sum += cpu_ticks(row[0].as<pid_t>());
    return sum;
  };
  const long before = ticks();
  std::this_thread::sleep_for(3s);
  const long spent = ticks() - before;
  // Spinning every 2 ms: 44-47 ticks; backing off: 3.
  EXPECT_LE(spent, 15) << "CPU ticks in 3 s while the due row was held";
  EXPECT_EQ(executions(), 0);
  lock->abort();
  const auto let_go = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until(10s, [&] { return executions() == 1; })) << w.log();
  EXPECT_LT(std::chrono::steady_clock::now() - let_go, 2s);
}

TEST_F(Wake, RecurringReminderStoppedByFlagWithWorkerRunning) {
  auto& w = start_worker();
  sql("SELECT nudge.create_reminder(p_entity_type => 'interviewer', p_entity_id => 'INT_100', "
      "p_event_type => 'feedback_form', p_channel => 'log', p_schedule_type => 'recurring', "
      "p_interval_seconds => 1, p_stop_condition_type => 'db_check', "
      "p_stop_condition_value => 'feedback_submitted')");
  ASSERT_TRUE(wait_until(kSlow, [&] { return executions() >= 2; })) << w.log();

  // Exactly what a user types.
  sql("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false)");
  sql("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted'");
  const std::string flagged_at = value<std::string>("SELECT clock_timestamp()::text");

  // Completed at once by the trigger, not at its next due time.
  EXPECT_EQ(value<std::string>("SELECT status || '/' || completed_reason FROM nudge.reminders"),
            "COMPLETED/stop_condition");
  const long fired = executions();
  // Two more periods: nothing more fires.
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(executions(), fired);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE fired_at > $1::timestamptz",
                        flagged_at),
            0);
  EXPECT_TRUE(w.running());
}

}  // namespace
}  // namespace nudge::test
