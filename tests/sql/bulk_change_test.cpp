// nudge.pause_reminders / resume_reminders / cancel_reminders: every reminder matching the ids
// or filters changes as the single-reminder function would change it, in one transaction; the
// others are left alone; no filter at all, an empty id list or a channel that is not one is
// refused.

#include <string>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class BulkChangeTest : public LifecycleTest {
 protected:
  // The answer of nudge.<action>_reminders(<args>) as JSON text.
  nlohmann::json bulk(const std::string& action, const std::string& args) {
    return nlohmann::json::parse(
        value<std::string>("SELECT nudge." + action + "_reminders(" + args + ")::text"));
  }
  std::int64_t make(const std::string& entity_id, const std::string& event_type = "nudge") {
    return create("p_entity_type => 'user', p_entity_id => '" + entity_id + "', p_event_type => '" +
                  event_type +
                  "', p_channel => 'log', p_schedule_type => 'recurring', "
                  "p_interval_seconds => 60, p_run_at => now() + interval '1 hour'")
        .second;
  }
};

TEST_F(BulkChangeTest, PauseChangesTheActiveRemindersThatMatchAndNothingElse) {
  const std::int64_t a = make("u1", "feedback");
  const std::int64_t b = make("u1", "survey");
  const std::int64_t c = make("u2", "feedback");
  const std::int64_t done = make("u1", "done");
  sql("SELECT nudge.cancel_reminder($1)", done);

  const auto answer = bulk("pause", "p_entity_id => 'u1'");
  EXPECT_EQ(answer["count"], 2);
  EXPECT_EQ(answer["ids"], nlohmann::json::array({a, b}));
  EXPECT_EQ(answer["more"], false);
  EXPECT_EQ(status(a), "PAUSED");
  EXPECT_EQ(status(b), "PAUSED");
  EXPECT_EQ(status(c), "ACTIVE");
  EXPECT_EQ(status(done), "CANCELLED");

  // Filters combine: only u1's survey resumes.
  const auto resumed = bulk("resume", "p_entity_id => 'u1', p_event_type => 'survey'");
  EXPECT_EQ(resumed["ids"], nlohmann::json::array({b}));
  EXPECT_EQ(status(a), "PAUSED");
  EXPECT_EQ(status(b), "ACTIVE");
}

TEST_F(BulkChangeTest, CancelTakesActiveAndPausedOnesAndEmitsTheirEvents) {
  const std::int64_t a = make("u1");
  const std::int64_t b = make("u2");
  const std::int64_t c = make("u3");
  sql("SELECT nudge.pause_reminder($1)", b);

  const auto answer = bulk("cancel", "p_ids => ARRAY[" + std::to_string(a) + ", " +
                                         std::to_string(b) + ", 999999]::bigint[]");
  EXPECT_EQ(answer["ids"], nlohmann::json::array({a, b}));
  EXPECT_EQ(status(a), "CANCELLED");
  EXPECT_EQ(status(b), "CANCELLED");
  EXPECT_EQ(status(c), "ACTIVE");
  // Exactly what two single cancels would do: two lifecycle events.
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.events WHERE event_type = "
                        "'nudge.reminder_completed' AND data->>'reason' = 'cancelled'"),
            2);
}

TEST_F(BulkChangeTest, StatusActiveMatchesEveryActiveReminder) {
  for (int i = 0; i < 5; ++i) make("u" + std::to_string(i));
  EXPECT_EQ(bulk("pause", "p_status => 'ACTIVE'")["count"], 5);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'PAUSED'"), 5);
  // Nothing left to pause: an empty answer, not an error.
  const auto again = bulk("pause", "p_status => 'ACTIVE'");
  EXPECT_EQ(again["count"], 0);
  EXPECT_EQ(again["ids"], nlohmann::json::array());
}

TEST_F(BulkChangeTest, ResumedOnesThatAreDueAreClaimedAtOnce) {
  const std::int64_t due = create_recurring("u1", 60);
  const std::int64_t later = make("u2");
  bulk("pause", "p_status => 'ACTIVE'");
  EXPECT_TRUE(claim("w1").empty());
  const auto answer = bulk("resume", "p_status => 'PAUSED'");
  EXPECT_EQ(answer["ids"], nlohmann::json::array({due, later}));
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].id, due);
}

TEST_F(BulkChangeTest, NoFilterAtAllIsRefusedAndChangesNothing) {
  const std::int64_t a = make("u1");
  const SqlFailure f = failure_of("SELECT nudge.cancel_reminders()");
  EXPECT_EQ(f.sqlstate, "22023");
  EXPECT_EQ(f.message.rfind("filter: ", 0), 0u) << f.message;
  EXPECT_EQ(status(a), "ACTIVE");
}

TEST_F(BulkChangeTest, BadIdsOrStatusAreRefusedNamingTheField) {
  const SqlFailure many = failure_of(
      "SELECT nudge.pause_reminders(p_ids => ARRAY(SELECT generate_series(1, 1001))::bigint[])");
  EXPECT_EQ(many.sqlstate, "22023");
  EXPECT_EQ(many.message.rfind("ids: ", 0), 0u) << many.message;
  const SqlFailure status = failure_of("SELECT nudge.pause_reminders(p_status => 'DONE')");
  EXPECT_EQ(status.sqlstate, "22023");
  EXPECT_EQ(status.message.rfind("status: ", 0), 0u) << status.message;
}

// As the REST API answers 400 for them: a filter that can match nothing by its form is a
// mistake, not an empty answer.
TEST_F(BulkChangeTest, AChannelThatIsNoChannelOrAnEmptyIdListIsRefusedNamingIt) {
  const std::int64_t a = make("u1");
  for (const std::string action : {"pause", "resume", "cancel"}) {
    SCOPED_TRACE(action);
    const SqlFailure channel =
        failure_of("SELECT nudge." + action + "_reminders(p_channel => 'sms')");
    EXPECT_EQ(channel.sqlstate, "22023");
    EXPECT_EQ(channel.message, "channel: must be one of log, webhook, email");
    const SqlFailure ids = failure_of("SELECT nudge." + action + "_reminders(p_ids => '{}')");
    EXPECT_EQ(ids.sqlstate, "22023");
    EXPECT_EQ(ids.message, "ids: must hold 1 to 1000 reminder ids");
  }
  EXPECT_EQ(status(a), "ACTIVE");
  EXPECT_EQ(bulk("pause", "p_channel => 'log'")["ids"], nlohmann::json::array({a}));
}

TEST_F(BulkChangeTest, AtMostTenThousandChangePerCallAndMoreSaysSo) {
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
      " interval_seconds, next_run_at) SELECT 'load', g::text, 'e', 'log', 'recurring', 60,"
      " now() + interval '1 day' FROM generate_series(1, 10001) g");
  const auto first = bulk("pause", "p_entity_type => 'load'");
  EXPECT_EQ(first["count"], 10000);
  EXPECT_EQ(first["more"], true);
  const auto second = bulk("pause", "p_entity_type => 'load'");
  EXPECT_EQ(second["count"], 1);
  EXPECT_EQ(second["more"], false);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'PAUSED'"), 10001);
}

TEST_F(BulkChangeTest, AReminderLeasedByAWorkerIsPausedAsASinglePauseWouldBe) {
  const std::int64_t id = create_recurring("u1", 60);
  ASSERT_EQ(claim("w1").size(), 1u);
  EXPECT_EQ(bulk("pause", "p_entity_id => 'u1'")["count"], 1);
  EXPECT_EQ(status(id), "PAUSED");
}

}  // namespace
}  // namespace nudge::test
