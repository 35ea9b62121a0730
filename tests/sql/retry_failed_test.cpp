// nudge.retry_reminder / retry_reminders: a FAILED reminder becomes ACTIVE and due now, as a new
// occurrence with a fresh attempt budget; the failed occurrence stays failed in the history; a
// live reminder with the same identity (or, in bulk, a newer failed one) keeps it FAILED.

#include <string>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class RetryFailedTest : public LifecycleTest {
 protected:
  // A one_time reminder whose single attempt failed: FAILED.
  std::int64_t failed_one(const std::string& entity_id) {
    const std::int64_t id = create_one_time(entity_id, kDue, kOneAttempt);
    const auto fires = claim("w1");
    EXPECT_EQ(fires.size(), 1u);
    finish("w1", fires, "failed", "HTTP 503");
    EXPECT_EQ(status(id), "FAILED");
    return id;
  }
  std::string retry(std::int64_t id) {
    return value<std::string>("SELECT (nudge.retry_reminder($1)).status", id);
  }
  nlohmann::json bulk(const std::string& args) {
    return nlohmann::json::parse(
        value<std::string>("SELECT nudge.retry_reminders(" + args + ")::text"));
  }
};

TEST_F(RetryFailedTest, AFailedReminderIsDueNowAsANewOccurrenceWithAFreshBudget) {
  const std::int64_t id = failed_one("u1");
  const std::string failed_at = value<std::string>(
      "SELECT scheduled_for::text FROM nudge.executions WHERE reminder_id = $1", id);
  EXPECT_EQ(retry(id), "ACTIVE");
  const pqxx::row r = reminder(id);
  EXPECT_TRUE(r["completed_reason"].is_null());
  EXPECT_TRUE(r["finished_at"].is_null());
  EXPECT_TRUE(r["occurrence_at"].is_null());
  EXPECT_EQ(r["attempt"].as<int>(), 0);
  EXPECT_TRUE(value<bool>("SELECT next_run_at <= now() FROM nudge.reminders WHERE id = $1", id));

  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].attempt, 1) << "a fresh budget";
  EXPECT_TRUE(
      value<bool>("SELECT $1::timestamptz > $2::timestamptz", fires[0].scheduled_for, failed_at))
      << "a new occurrence: its own idempotency key";
  finish("w1", fires, "delivered");
  EXPECT_EQ(status(id), "COMPLETED");
  EXPECT_EQ(reason(id), "fired");
  const pqxx::result history =
      sql("SELECT outcome FROM nudge.executions WHERE reminder_id = $1 ORDER BY scheduled_for", id);
  ASSERT_EQ(history.size(), 2u) << "the failed occurrence stays, once";
  EXPECT_EQ(history[0][0].as<std::string>(), "failed");
  EXPECT_EQ(history[1][0].as<std::string>(), "delivered");
  // On the stream: retried, not resumed.
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.changes WHERE kind = 'reminder' AND change = "
                        "'retried' AND object_ids = ARRAY[$1::bigint]",
                        id),
            1);
}

TEST_F(RetryFailedTest, RetryingAnActiveOneChangesNothingAndOtherStatusesAreRefused) {
  const std::int64_t id = failed_one("u1");
  retry(id);
  const std::string before =
      value<std::string>("SELECT row_to_json(r)::text FROM nudge.reminders r WHERE id = $1", id);
  EXPECT_EQ(retry(id), "ACTIVE");
  EXPECT_EQ(
      value<std::string>("SELECT row_to_json(r)::text FROM nudge.reminders r WHERE id = $1", id),
      before);

  const std::int64_t paused = create_recurring("u2", 60);
  sql("SELECT nudge.pause_reminder($1)", paused);
  const SqlFailure f = failure_of("SELECT nudge.retry_reminder($1)", paused);
  EXPECT_EQ(f.sqlstate, "NU409");
  EXPECT_EQ(f.message, "reminder " + std::to_string(paused) +
                           " is PAUSED, only a FAILED reminder can be retried");
  EXPECT_EQ(failure_of("SELECT nudge.retry_reminder(999999)").sqlstate, "NU404");
}

TEST_F(RetryFailedTest, ALiveReminderWithTheSameIdentityKeepsItFailed) {
  const std::int64_t id = failed_one("u1");
  const std::int64_t twin = create_one_time("u1", kInAnHour);
  ASSERT_NE(twin, id);
  const SqlFailure f = failure_of("SELECT nudge.retry_reminder($1)", id);
  EXPECT_EQ(f.sqlstate, "NU409");
  EXPECT_EQ(f.message, "reminder " + std::to_string(id) + " cannot be retried: reminder " +
                           std::to_string(twin) +
                           " is live with its entity_type, entity_id and event_type");
  EXPECT_EQ(status(id), "FAILED");
  EXPECT_EQ(bulk("p_status => 'FAILED'")["count"], 0);
}

TEST_F(RetryFailedTest, InBulkOnlyTheNewestFailedOneOfAnIdentityIsRetried) {
  const std::int64_t older = failed_one("u1");
  const std::int64_t newer = failed_one("u1");
  const std::int64_t other = failed_one("u2");
  const std::int64_t active = create_recurring("u3", 60, kInAnHour);

  const auto answer = bulk("p_entity_type => 'user'");
  EXPECT_EQ(answer["ids"], nlohmann::json::array({newer, other}));
  EXPECT_EQ(answer["more"], false);
  EXPECT_EQ(status(older), "FAILED");
  EXPECT_EQ(status(newer), "ACTIVE");
  EXPECT_EQ(status(other), "ACTIVE");
  EXPECT_EQ(status(active), "ACTIVE");
  EXPECT_EQ(claim("w1").size(), 2u) << "both due now";
  // Bad filters are refused as for the other bulk changes.
  EXPECT_EQ(failure_of("SELECT nudge.retry_reminders()").sqlstate, "22023");
}

}  // namespace
}  // namespace nudge::test
