// A reminder paused, cancelled or stopped by its flag while a worker is delivering it: the fire
// is still recorded and counted, but finishing never revives it.

#include <string>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class FinishNeverRevivesTest : public LifecycleTest {};

struct InFlightCase {
  const char* name;
  const char* schedule;      // one_time | recurring
  const char* change;        // pause | cancel | flag
  const char* status_after;  // after the finish
  const char* reason_after;  // "NULL" for none
  bool finished_at_after;    // finished_at set after the finish
};

void PrintTo(const InFlightCase& c, std::ostream* os) {
  *os << c.name;
}

class InFlightChange : public LifecycleTest, public ::testing::WithParamInterface<InFlightCase> {};

TEST_P(InFlightChange, FinishRecordsTheFireButKeepsTheNewStatus) {
  const InFlightCase& c = GetParam();
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  const std::int64_t id = std::string(c.schedule) == "one_time"
                              ? create_one_time("u1", kDue, stop_on("feedback_submitted"))
                              : create_recurring("u1", 3600, kDue, stop_on("feedback_submitted"));
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);

  const std::string change = c.change;
  if (change == "pause") sql("SELECT nudge.pause_reminder($1)", id);
  if (change == "cancel") sql("SELECT nudge.cancel_reminder($1)", id);
  if (change == "flag") {
    exec_as_user("UPDATE nudge.status_flags SET value = true WHERE key = 'feedback_submitted';");
  }
  const pqxx::row before = reminder(id);

  EXPECT_TRUE(finish_and_claim("w1", fires, 10).empty());

  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), c.status_after);
  EXPECT_EQ(reason(id), c.reason_after);
  EXPECT_EQ(r["fire_count"].as<int>(), 1);
  EXPECT_TRUE(r["leased_by"].is_null());
  EXPECT_TRUE(r["lease_expires_at"].is_null());
  EXPECT_EQ(r["attempt"].as<int>(), 0);
  EXPECT_EQ(!r["finished_at"].is_null(), c.finished_at_after);
  if (!before["finished_at"].is_null()) {
    // Finished before the finish: that moment stays.
    EXPECT_EQ(r["finished_at"].as<std::string>(), before["finished_at"].as<std::string>());
  }
  const pqxx::result e = sql("SELECT outcome, worker, attempts FROM nudge.executions");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["outcome"].as<std::string>(), "delivered");
  EXPECT_EQ(e[0]["worker"].as<std::string>(), "w1");

  // Whatever the time, it is not claimed again.
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 day' WHERE id = $1", id);
  EXPECT_TRUE(claim("w2").empty());
  EXPECT_EQ(count("nudge.executions"), 1);
}

INSTANTIATE_TEST_SUITE_P(
    WhileLeased, InFlightChange,
    ::testing::Values(
        InFlightCase{"recurring_paused", "recurring", "pause", "PAUSED", "NULL", false},
        InFlightCase{"recurring_cancelled", "recurring", "cancel", "CANCELLED", "cancelled", true},
        InFlightCase{"recurring_stopped_by_flag", "recurring", "flag", "COMPLETED",
                     "stop_condition", true},
        // A one_time paused in flight has fired: it is done, resuming must not fire it again.
        InFlightCase{"one_time_paused", "one_time", "pause", "COMPLETED", "fired", true},
        InFlightCase{"one_time_cancelled", "one_time", "cancel", "CANCELLED", "cancelled", true},
        InFlightCase{"one_time_stopped_by_flag", "one_time", "flag", "COMPLETED", "stop_condition",
                     true}),
    [](const ::testing::TestParamInfo<InFlightCase>& info) { return info.param.name; });

TEST_F(FinishNeverRevivesTest, RecurringPausedInFlightMovesOnAndResumesAtItsNextOccurrence) {
  const std::int64_t id = create_recurring("u1", 3600);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  sql("SELECT nudge.pause_reminder($1)", id);
  ASSERT_EQ(finish("w1", fires), 1);
  EXPECT_EQ(status(id), "PAUSED");
  EXPECT_TRUE(value<bool>(
      "SELECT next_run_at = $2::timestamptz + interval '3600 seconds' FROM nudge.reminders"
      " WHERE id = $1",
      id, fires[0].scheduled_for));

  sql("SELECT nudge.resume_reminder($1)", id);
  EXPECT_EQ(status(id), "ACTIVE");
  EXPECT_TRUE(claim("w1").empty());  // the fired occurrence does not come back
}

TEST_F(FinishNeverRevivesTest, OneTimePausedInFlightCannotBeResumedIntoAnotherFire) {
  const std::int64_t id = create_one_time("u1");
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  sql("SELECT nudge.pause_reminder($1)", id);
  ASSERT_EQ(finish("w1", fires), 1);
  ASSERT_EQ(status(id), "COMPLETED");
  EXPECT_EQ(failure_of("SELECT nudge.resume_reminder($1)", id).sqlstate, "NU409");
  EXPECT_TRUE(claim("w1").empty());
  EXPECT_EQ(executions_of(id), 1);
}

// A new run_at under a delivery would move the occurrence the worker records its attempt by, and
// a new payload would be stored as if sent (never sent, when the attempt ends the reminder):
// both refused until the attempt ends (other changes are not). The run_at used to drop the
// attempt's record and send the reminder again under a new key; the payload was answered OK and
// lost (explore18b #1).
TEST_F(FinishNeverRevivesTest, ANewRunAtOrPayloadWaitsUntilTheDeliveryUnderWayEnds) {
  const std::int64_t id = create_one_time("u1");
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  const SqlFailure refused =
      failure_of("SELECT nudge.reschedule_reminder($1, p_run_at => now() + interval '1 hour')", id);
  EXPECT_EQ(refused.sqlstate, "NU409");
  EXPECT_NE(refused.message.find("is being delivered (attempt 1"), std::string::npos)
      << refused.message;
  EXPECT_NE(refused.message.find("change its run_at once that attempt ends"), std::string::npos)
      << refused.message;
  const std::string payload_before =
      value<std::string>("SELECT payload::text FROM nudge.reminders WHERE id = $1", id);
  const SqlFailure payload =
      failure_of("SELECT nudge.reschedule_reminder($1, p_payload => '{\"k\": 2}')", id);
  EXPECT_EQ(payload.sqlstate, "NU409");
  EXPECT_NE(payload.message.find("change its payload once that attempt ends"), std::string::npos)
      << payload.message;
  sql("SELECT nudge.reschedule_reminder($1, p_max_fires => 5)", id);
  EXPECT_TRUE(finish_and_claim("w1", fires, 10).empty());
  EXPECT_EQ(status(id), "COMPLETED");
  EXPECT_EQ(value<std::string>("SELECT payload::text FROM nudge.reminders WHERE id = $1", id),
            payload_before);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"), 1);

  // A recurring one takes the new run_at once its attempt is recorded.
  const std::int64_t every = create_recurring("u2", 3600);
  const auto fire = claim("w1");
  ASSERT_EQ(fire.size(), 1u);
  EXPECT_EQ(failure_of("SELECT nudge.reschedule_reminder($1, p_run_at => now())", every).sqlstate,
            "NU409");
  EXPECT_EQ(failure_of("SELECT nudge.reschedule_reminder($1, p_payload => '{}')", every).sqlstate,
            "NU409");
  EXPECT_TRUE(finish_and_claim("w1", fire, 0).empty());
  sql("SELECT nudge.reschedule_reminder($1, p_run_at => '2099-01-01T00:00:00Z', "
      "p_payload => '{\"k\": 3}')",
      every);
  EXPECT_EQ(value<std::string>("SELECT payload->>'k' FROM nudge.reminders WHERE id = $1", every),
            "3");

  // A cron one's schedule waits the same way; then its next fire is the new schedule's.
  const std::int64_t nightly = value<std::int64_t>(
      "SELECT (reminder).id FROM nudge.create_reminder('u', 'u3', 'e', 'log', 'cron', "
      "p_cron => '* * * * *', p_run_at => now() - interval '1 minute')");
  const auto tick = claim("w1");
  ASSERT_EQ(tick.size(), 1u);
  const SqlFailure cron = failure_of(
      "SELECT nudge.reschedule_reminder($1, p_cron => '0 3 * * *', p_timezone => 'Asia/Tokyo')",
      nightly);
  EXPECT_EQ(cron.sqlstate, "NU409");
  EXPECT_NE(cron.message.find("change its cron and timezone once that attempt ends"),
            std::string::npos)
      << cron.message;
  EXPECT_TRUE(finish_and_claim("w1", tick, 0).empty());
  sql("SELECT nudge.reschedule_reminder($1, p_cron => '0 3 * * *', p_timezone => 'Asia/Tokyo')",
      nightly);
  EXPECT_EQ(value<std::string>("SELECT to_char(next_run_at AT TIME ZONE 'Asia/Tokyo', 'HH24:MI') "
                               "|| ' ' || (next_run_at - now() < interval '1 day') "
                               "FROM nudge.reminders WHERE id = $1",
                               nightly),
            "03:00 true");
  EXPECT_EQ(value<std::string>("SELECT next_run_at AT TIME ZONE 'UTC' FROM nudge.reminders "
                               "WHERE id = $1",
                               every),
            "2099-01-01 00:00:00");
  EXPECT_EQ(value<long>("SELECT fire_count FROM nudge.reminders WHERE id = $1", every), 1);
}

// A reschedule back to an occurrence that already fired would have it delivered again under its
// old key and counted, but never recorded: refused naming run_at. A moment not yet fired is a new
// occurrence.
TEST_F(FinishNeverRevivesTest, ARescheduleToATimeThatAlreadyFiredIsRefused) {
  const std::int64_t id = create_recurring("u1", 3600);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_TRUE(finish_and_claim("w1", fires, 0).empty());
  const std::string fired = value<std::string>(
      "SELECT scheduled_for::text FROM nudge.executions WHERE reminder_id = $1", id);
  const SqlFailure again =
      failure_of("SELECT nudge.reschedule_reminder($1, p_run_at => $2::timestamptz)", id, fired);
  EXPECT_EQ(again.sqlstate, "22023");
  EXPECT_EQ(again.message.rfind("run_at: the occurrence at ", 0), 0u) << again.message;
  EXPECT_NE(again.message.find("has already fired"), std::string::npos) << again.message;

  // A moment later is an occurrence of its own: it fires and is recorded as one.
  sql("SELECT nudge.reschedule_reminder($1, p_run_at => $2::timestamptz + interval '1 ms')", id,
      fired);
  const auto refire = claim("w1");
  ASSERT_EQ(refire.size(), 1u);
  EXPECT_TRUE(finish_and_claim("w1", refire, 0).empty());
  EXPECT_EQ(count("nudge.executions"), 2);
  EXPECT_EQ(value<long>("SELECT fire_count FROM nudge.reminders WHERE id = $1", id), 2);
}

TEST_F(FinishNeverRevivesTest, FailedFireOfACancelledOneTimeKeepsItCancelled) {
  const std::int64_t id = create_one_time("u1");
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  sql("SELECT nudge.cancel_reminder($1)", id);
  ASSERT_EQ(finish("w1", fires, "failed", "timeout"), 1);
  EXPECT_EQ(status(id), "CANCELLED");
  EXPECT_EQ(reason(id), "cancelled");
}

TEST_F(FinishNeverRevivesTest, LeaseOfACancelledReminderThatExpiresIsNotTakenOver) {
  const std::int64_t id = create_recurring("u1", 3600);
  ASSERT_EQ(claim("w1").size(), 1u);
  sql("SELECT nudge.cancel_reminder($1)", id);
  sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
      id);
  EXPECT_TRUE(claim("w2").empty());
  EXPECT_EQ(status(id), "CANCELLED");
}

}  // namespace
}  // namespace nudge::test
