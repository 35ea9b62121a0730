// A reminder's sentence is stored with its row (schedule_text, migration 0020) for the live
// stream and every read of its JSON: it must say what nudge.describe_reminder says of the row
// after every write of its parts, and nothing a fire changes may leave it stale.

#include <string>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class StoredScheduleText : public LifecycleTest {
 protected:
  // The reminders whose stored sentence is not the one of their row as it is now.
  long stale() {
    return count(
        "nudge.reminders r WHERE r.schedule_text IS DISTINCT FROM nudge.describe_reminder(r)");
  }
  std::string stored(std::int64_t id) {
    return value<std::string>("SELECT schedule_text FROM nudge.reminders WHERE id = $1", id);
  }
};

TEST_F(StoredScheduleText, TheStoredSentenceFollowsEveryWriteOfItsParts) {
  const auto once = create_one_time("once", kInAnHour, ", p_max_attempts => 3");
  const auto every = create_recurring("every", 60, kInAnHour);
  const auto cron = value<long>(
      "SELECT (c.reminder).id FROM nudge.create_reminder(p_entity_type => 'u', p_entity_id => "
      "'cron', p_event_type => 'e', p_channel => 'log', p_schedule_type => 'cron', "
      "p_cron => '0 9 * * 1-5', p_timezone => 'Europe/Berlin') c");
  EXPECT_EQ(stale(), 0);
  EXPECT_EQ(stored(cron), "every weekday at 09:00 (Europe/Berlin)");

  sql("SELECT nudge.reschedule_reminder($1, p_interval_seconds => 120, p_max_fires => 4)", every);
  EXPECT_EQ(stored(every), "every 2 minutes, at most 4 times");
  sql("SELECT nudge.reschedule_reminder($1, p_run_at => '2099-01-01 08:30Z')", once);
  EXPECT_EQ(stored(once), "once on 2099-01-01 at 08:30 (UTC)");
  sql("UPDATE nudge.reminders SET cron = '0 10 * * *', cron_schedule = nudge.cron_parse('0 10 * "
      "* *') WHERE id = $1",
      cron);
  EXPECT_EQ(stored(cron), "every day at 10:00 (Europe/Berlin)") << "after its cron words";
  sql("UPDATE nudge.reminders SET timezone = 'Asia/Tokyo', stop_condition_type = 'db_check', "
      "stop_condition_value = 'done', ends_at = '2099-06-30 12:00Z' WHERE id = $1",
      every);
  EXPECT_EQ(stale(), 0);
  EXPECT_NE(stored(every).find("until done is true"), std::string::npos) << stored(every);

  // Written directly, the column is described again: it never says anything else.
  sql("UPDATE nudge.reminders SET schedule_text = 'something else' WHERE id = $1", cron);
  EXPECT_EQ(stored(cron), "every day at 10:00 (Europe/Berlin)");
  EXPECT_EQ(stale(), 0);
  EXPECT_EQ(
      value<std::string>("SELECT nudge.reminder_json(r)->>'schedule_text' FROM nudge.reminders r "
                         "WHERE id = $1",
                         every),
      stored(every));
}

TEST_F(StoredScheduleText, FiresRetriesAndTheirEndsLeaveTheSentenceAsTheRowSaysIt) {
  const auto once = create_one_time("once", kDue, ", p_max_attempts => 2");
  const auto every = create_recurring("every", 60);
  const std::string once_before = stored(once);
  const std::string every_before = stored(every);
  // A failed attempt: the one_time reminder retries its occurrence (occurrence_at set, next_run_at
  // moved on), the recurring one moves on to its next run.
  finish("w1", claim("w1"), "failed", "boom");
  EXPECT_EQ(stale(), 0);
  EXPECT_EQ(stored(once), once_before) << "a retry is of the same occurrence";
  EXPECT_EQ(stored(every), every_before);
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 second' WHERE status = "
      "'ACTIVE'");
  finish("w1", claim("w1"));
  EXPECT_EQ(status(once), "COMPLETED");
  EXPECT_EQ(stale(), 0);
}

}  // namespace
}  // namespace nudge::test
