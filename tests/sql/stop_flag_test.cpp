// Stopping reminders with nudge.status_flags, exactly as a user types it at a psql prompt: a flag
// turning true completes every live reminder it stops at once, in the flag's own transaction.

#include <string>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class StopFlagTest : public LifecycleTest {
 protected:
  void expect_stopped(std::int64_t id) {
    const pqxx::row r = reminder(id);
    EXPECT_EQ(r["status"].as<std::string>(), "COMPLETED");
    EXPECT_EQ(r["completed_reason"].is_null() ? "NULL" : r["completed_reason"].as<std::string>(),
              "stop_condition");
    EXPECT_FALSE(r["finished_at"].is_null());
  }
};

TEST_F(StopFlagTest, FlagUpdateStopsRecurringReminder) {
  const std::int64_t id = create_recurring("INT_100", 60, kDue, stop_on("feedback_submitted"));
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  EXPECT_EQ(status(id), "ACTIVE");

  // It fires while the flag is false.
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  ASSERT_EQ(fires[0].id, id);
  ASSERT_TRUE(finish_and_claim("w1", fires, 0).empty());
  EXPECT_EQ(status(id), "ACTIVE");
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);

  exec_as_user("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted';");
  // Completed as soon as the UPDATE committed: no claim needed.
  expect_stopped(id);
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);

  // Never claimed again, even once its next occurrence is long past.
  EXPECT_TRUE(claim("w2").empty());
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 day' WHERE id = $1", id);
  EXPECT_TRUE(claim("w2").empty());
  EXPECT_EQ(executions_of(id), 1);
  expect_stopped(id);
}

TEST_F(StopFlagTest, FlagUpdateStopsTheReminderBeforeItsFirstFire) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  const std::int64_t id = create_one_time("INT_100", kDue, stop_on("feedback_submitted"));
  exec_as_user("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted';");
  expect_stopped(id);
  EXPECT_TRUE(claim("w1").empty());
  EXPECT_EQ(count("nudge.executions"), 0);
}

TEST_F(StopFlagTest, FlagStopsEveryReminderWatchingIt) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(
        create_recurring("u" + std::to_string(i), 60, kDue, stop_on("feedback_submitted")));
  }
  exec_as_user("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted';");
  for (const auto id : ids) expect_stopped(id);
  EXPECT_TRUE(claim("w1").empty());
}

TEST_F(StopFlagTest, PausedReminderIsCompletedByFlag) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  const std::int64_t id = create_recurring("INT_100", 60, kDue, stop_on("feedback_submitted"));
  sql("SELECT nudge.pause_reminder($1)", id);
  exec_as_user("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted';");
  expect_stopped(id);
  // And it stays stopped: a resume is no longer allowed.
  EXPECT_EQ(failure_of("SELECT nudge.resume_reminder($1)", id).sqlstate, "NU409");
  EXPECT_TRUE(claim("w1").empty());
}

TEST_F(StopFlagTest, FlagWithAnotherKeyLeavesReminderUntouched) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  const std::int64_t id = create_recurring("INT_100", 60, kDue, stop_on("feedback_submitted"));
  const std::int64_t plain = create_recurring("INT_200", 60);
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('other_flag', true);");
  exec_as_user(
      "INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted_2', false);");
  exec_as_user("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted_2';");
  EXPECT_EQ(status(id), "ACTIVE");
  EXPECT_EQ(status(plain), "ACTIVE");
  EXPECT_EQ(claim("w1").size(), 2u);
}

TEST_F(StopFlagTest, FlagTurningFalseOrStayingFalseChangesNothing) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  const std::int64_t id = create_recurring("INT_100", 60, kDue, stop_on("feedback_submitted"));
  exec_as_user("UPDATE nudge.status_flags SET value = false WHERE key = 'feedback_submitted';");
  EXPECT_EQ(status(id), "ACTIVE");
  exec_as_user("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted';");
  exec_as_user("UPDATE nudge.status_flags SET value = false WHERE key = 'feedback_submitted';");
  // Turning it back to false does not revive the reminder.
  expect_stopped(id);
}

TEST_F(StopFlagTest, UpsertFromFalseToTrueStopsReminder) {
  const std::int64_t id = create_recurring("INT_100", 60, kDue, stop_on("feedback_submitted"));
  exec_as_user(
      "INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false) "
      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;");
  EXPECT_EQ(status(id), "ACTIVE");
  exec_as_user(
      "INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', true) "
      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;");
  expect_stopped(id);
  EXPECT_TRUE(claim("w1").empty());
}

TEST_F(StopFlagTest, InsertingFlagAsTrueStopsReminder) {
  const std::int64_t id = create_recurring("INT_100", 60, kDue, stop_on("feedback_submitted"));
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', true);");
  expect_stopped(id);
  EXPECT_TRUE(claim("w1").empty());
}

// One statement setting many flags (a batch of events does) stops the reminders of the true ones.
TEST_F(StopFlagTest, OneStatementSettingManyFlagsStopsTheRemindersOfTheTrueOnes) {
  const std::int64_t a = create_recurring("INT_100", 60, kDue, stop_on("done:a"));
  const std::int64_t b = create_recurring("INT_200", 60, kDue, stop_on("done:b"));
  const std::int64_t c = create_recurring("INT_300", 60, kDue, stop_on("done:c"));
  exec_as_user(
      "INSERT INTO nudge.status_flags (key, value) VALUES ('done:a', true), ('done:b', false);");
  expect_stopped(a);
  EXPECT_EQ(status(b), "ACTIVE");
  exec_as_user(
      "INSERT INTO nudge.status_flags (key, value) VALUES ('done:b', true), ('done:c', true)"
      " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;");
  expect_stopped(b);
  expect_stopped(c);
}

// A reminder's end is an event carrying the reminder, payload and all: one with the largest
// payload a create takes still ends by its flag, by cancel and by its last fire.
TEST_F(StopFlagTest, AReminderWithTheLargestPayloadStillEndsEveryWay) {
  const std::string big =
      ", p_payload => jsonb_build_object('s', repeat('a', 65400)), p_max_fires => 1";
  const std::int64_t by_flag = create_recurring("big1", 60, kInAnHour, stop_on("big") + big);
  const std::int64_t cancelled = create_recurring("big2", 60, kInAnHour, big);
  const std::int64_t fired = create_recurring("big3", 60, kDue, big);
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('big', true);");
  expect_stopped(by_flag);
  sql("SELECT nudge.cancel_reminder($1)", cancelled);
  EXPECT_EQ(status(cancelled), "CANCELLED");
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(finish("w1", fires), 1);
  EXPECT_EQ(reason(fired), "max_fires");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.events WHERE event_type = "
                        "'nudge.reminder_completed' AND length(data->'reminder'->'payload'->>'s') "
                        "= 65400"),
            3);
}

// Setting a flag to the value it has is no change: nothing is written, audited or logged.
TEST_F(StopFlagTest, SettingAFlagToItsValueWritesNothing) {
  const auto written = [&] {
    return value<std::string>(
        "SELECT concat_ws(' ', updated_at, (SELECT count(*) FROM nudge.audit), "
        "(SELECT count(*) FROM nudge.changes)) FROM nudge.status_flags WHERE key = 'same'");
  };
  sql("SELECT nudge.set_flag('same', true)");
  const std::string before = written();
  EXPECT_TRUE(value<bool>("SELECT (nudge.set_flag('same', true)).value"));
  EXPECT_EQ(written(), before);
  EXPECT_FALSE(value<bool>("SELECT (nudge.set_flag('same', false)).value"));
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.audit WHERE subject = 'same'"), 2);
}

TEST_F(StopFlagTest, FlagUpdateInAnAbortedTransactionStopsNothing) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  const std::int64_t id = create_recurring("INT_100", 60, kDue, stop_on("feedback_submitted"));
  {
    pqxx::work tx(conn_);
    tx.exec("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted'");
    tx.abort();
  }
  EXPECT_EQ(status(id), "ACTIVE");
  EXPECT_EQ(claim("w1").size(), 1u);
}

TEST_F(StopFlagTest, FlagDoesNotRewriteFinishedReminders) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  const std::int64_t cancelled =
      create_recurring("u1", 60, kInAnHour, stop_on("feedback_submitted"));
  sql("SELECT nudge.cancel_reminder($1)", cancelled);
  const std::int64_t fired = create_one_time("u2", kDue, stop_on("feedback_submitted"));
  ASSERT_EQ(finish("w1", claim("w1")), 1);
  const std::string fired_finished_at = reminder(fired)["finished_at"].c_str();

  exec_as_user("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted';");
  EXPECT_EQ(status(cancelled), "CANCELLED");
  EXPECT_EQ(reason(cancelled), "cancelled");
  EXPECT_EQ(status(fired), "COMPLETED");
  EXPECT_EQ(reason(fired), "fired");
  EXPECT_EQ(reminder(fired)["finished_at"].as<std::string>(), fired_finished_at);
}

// The trigger's guarantee is "when a flag is true after an insert or update": that includes an
// UPDATE that renames a true flag to the key a reminder watches.
TEST_F(StopFlagTest, RenamingATrueFlagToTheWatchedKeyStopsReminder) {
  const std::int64_t id = create_recurring("INT_100", 60, kInAnHour, stop_on("feedback_submitted"));
  exec_as_user(
      "INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted_tmp', true);");
  exec_as_user(
      "UPDATE nudge.status_flags SET key = 'feedback_submitted' WHERE key = "
      "'feedback_submitted_tmp';");
  expect_stopped(id);
}

TEST_F(StopFlagTest, FlagUpdateSetsItsUpdatedAt) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  sql("UPDATE nudge.status_flags SET updated_at = now() - interval '1 day'");
  exec_as_user("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted';");
  EXPECT_TRUE(
      value<bool>("SELECT updated_at > now() - interval '1 minute' FROM nudge.status_flags"
                  " WHERE key = 'feedback_submitted'"));
}

// A flag can turn true where the trigger does not see the reminder (a reminder created
// concurrently). Simulated here by disabling the trigger in this test's own database: the claim
// must then complete the reminder itself, without handing it out and without recording a fire.
TEST_F(StopFlagTest, FlagTrueAtClaimTimeCompletesWithoutFiring) {
  const std::int64_t id = create_recurring("INT_100", 60, kDue, stop_on("feedback_submitted"));
  const std::int64_t other = create_recurring("INT_200", 60);
  sql("ALTER TABLE nudge.status_flags DISABLE TRIGGER USER");
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', true);");
  ASSERT_EQ(status(id), "ACTIVE");  // the trigger really was bypassed

  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].id, other);  // the stopped one does not hold up the others
  expect_stopped(id);
  const pqxx::row r = reminder(id);
  EXPECT_TRUE(r["leased_by"].is_null());
  EXPECT_TRUE(r["lease_expires_at"].is_null());
  EXPECT_EQ(r["attempt"].as<int>(), 0);
  EXPECT_EQ(r["fire_count"].as<int>(), 0);
  EXPECT_EQ(executions_of(id), 0);
  EXPECT_TRUE(claim("w2").empty());
}

}  // namespace
}  // namespace nudge::test
