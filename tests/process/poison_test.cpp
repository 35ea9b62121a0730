// A delivery whose outcome the database refuses to record (a row the SQL cannot finish) costs
// that reminder only: the worker records every other outcome, goes on claiming, and does not
// deliver the refused one again and again.

#include <set>
#include <string>
#include <thread>

#include "process/process_fixture.hpp"

namespace nudge::test {
namespace {

class Poison : public ProcessTest {
 protected:
  // One reminder due now whose executions row cannot be written (so no finish of it commits),
  // then `others` more due now; answers the poisoned one's id.
  long poisoned_and_due(int others) {
    const long id = value<long>(
        "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
        "next_run_at) VALUES ('poison', '1', 'due', 'log', 'one_time', now()) RETURNING id");
    sql("CREATE FUNCTION public.refuse_execution() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'refused execution of reminder %', NEW.reminder_id; END $$");
    sql("CREATE TRIGGER refuse_execution BEFORE INSERT ON nudge.executions FOR EACH ROW WHEN "
        "(NEW.reminder_id = " +
        std::to_string(id) + ") EXECUTE FUNCTION public.refuse_execution()");
    insert_due(others);
    return id;
  }

  // Lines of the workers' output that contain every one of `parts`.
  long lines_with(std::initializer_list<std::string> parts) const {
    long n = 0;
    std::istringstream in(all_logs());
    for (std::string line; std::getline(in, line);) {
      bool all = true;
      for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
      n += all ? 1 : 0;
    }
    return n;
  }

  // The log channel's fire lines for the poisoned reminder (its entity_type is its own).
  long poisoned_deliveries() const {
    return lines_with({"\"entity_type\":\"poison\"", "\"idempotency_key\""});
  }

  // Every reminder but the poisoned one (`others` in all) was delivered once and has exactly
  // one execution, of its first attempt; the poisoned one was delivered once and has none.
  void expect_others_once(long others) {
    EXPECT_EQ(executions(), others);
    EXPECT_EQ(value<long>("SELECT count(DISTINCT e.reminder_id) FROM nudge.executions e "
                          "JOIN nudge.reminders r ON r.id = e.reminder_id "
                          "WHERE r.entity_type <> 'poison' AND e.attempts = 1"),
              others);
    EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE entity_type <> 'poison' "
                          "AND (status <> 'COMPLETED' OR leased_by IS NOT NULL)"),
              0);
    const auto keys = delivered_keys();
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(),
              static_cast<std::size_t>(others) + 1);
    EXPECT_EQ(static_cast<long>(keys.size()), others + 1) << all_logs();
    EXPECT_EQ(poisoned_deliveries(), 1) << all_logs();
  }
};

TEST_F(Poison, RefusedOutcomeIsSetAsideAndTheRestAreRecorded) {
  const long poisoned = poisoned_and_due(30);
  start_worker({{"NUDGE_WORKER_LEASE_SECONDS", "5"}});

  ASSERT_TRUE(wait_for_executions(30)) << all_logs();
  const std::string id_field = "\"reminder_id\":" + std::to_string(poisoned);
  ASSERT_TRUE(wait_until(
      kSlow,
      [&] {
        return lines_with({"cannot record a delivery", id_field}) > 0;
      },
      50ms))
      << all_logs();
  // Logged once, with the occurrence and the database's own words.
  EXPECT_EQ(lines_with({"cannot record a delivery"}), 1) << all_logs();
  EXPECT_EQ(lines_with({"cannot record a delivery", id_field, "\"scheduled_for\":",
                        "refused execution of reminder " + std::to_string(poisoned),
                        "\"action\":\"paused\""}),
            1)
      << all_logs();
  // Paused, and its lease given back: the unrecorded claim does not count as an attempt.
  EXPECT_EQ(value<std::string>("SELECT status || ' ' || attempt || ' ' || (leased_by IS NULL) "
                               "FROM nudge.reminders WHERE id = $1",
                               poisoned),
            "PAUSED 0 true");

  // Not stalled: what is created afterwards fires at once (the worker waits 300 s when idle,
  // so only a wake-up and a working claim fire these).
  insert_due(10, "later");
  ASSERT_TRUE(wait_for_executions(40, 10s)) << all_logs();

  // Past its lease (5 s), the poisoned reminder still has been delivered once: paused, it is
  // neither re-delivered nor recorded.
  std::this_thread::sleep_for(6s);
  expect_others_once(40);
  EXPECT_EQ(lines_with({"claim loop error"}), 0) << all_logs();

  // Resumed (the cause fixed), it is claimed at once, delivered again (its first delivery was
  // never recorded) and recorded like any other, as its first attempt.
  sql("DROP TRIGGER refuse_execution ON nudge.executions");
  sql("SELECT nudge.resume_reminder($1)", poisoned);
  ASSERT_TRUE(wait_for_executions(41, 10s)) << all_logs();
  EXPECT_EQ(value<std::string>("SELECT r.status || ' ' || e.attempts FROM nudge.reminders r "
                               "JOIN nudge.executions e ON e.reminder_id = r.id WHERE r.id = $1",
                               poisoned),
            "COMPLETED 1");
  EXPECT_EQ(poisoned_deliveries(), 2) << all_logs();
}

TEST_F(Poison, ReminderThatCannotBePausedWaitsForItsLease) {
  const long poisoned = poisoned_and_due(20);
  sql("CREATE FUNCTION public.refuse_pause() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "RAISE EXCEPTION 'refused pause'; END $$");
  sql("CREATE TRIGGER refuse_pause BEFORE UPDATE ON nudge.reminders FOR EACH ROW WHEN "
      "(NEW.id = " +
      std::to_string(poisoned) +
      " AND NEW.status = 'PAUSED') EXECUTE FUNCTION public.refuse_pause()");
  auto& worker = start_worker({{"NUDGE_WORKER_LEASE_SECONDS", "30"}});

  ASSERT_TRUE(wait_for_executions(20)) << all_logs();
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return lines_with({"cannot record a delivery"}) > 0; }, 50ms))
      << all_logs();
  EXPECT_EQ(lines_with({"cannot record a delivery", "\"reminder_id\":" + std::to_string(poisoned),
                        "refused pause", "its lease is left to expire"}),
            1)
      << all_logs();
  // Still leased (to this worker), so nothing takes it before the lease ends.
  EXPECT_EQ(leased_by(worker.pid()), 1);

  insert_due(5, "later");
  ASSERT_TRUE(wait_for_executions(25, 10s)) << all_logs();
  std::this_thread::sleep_for(2s);
  expect_others_once(25);
  EXPECT_EQ(lines_with({"cannot record a delivery"}), 1) << all_logs();
}

}  // namespace
}  // namespace nudge::test
