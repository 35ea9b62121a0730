// nudge.prune_history: deletes executions, delivery attempts and finished reminders older than
// the retention, keeps everything newer and every live reminder, honours its limit, runs once at
// a time.

#include <string>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class PruneTest : public LifecycleTest {
 protected:
  int prune(const std::string& keep, int limit) {
    return value<int>("SELECT nudge.prune_history($1::interval, $2)", keep, limit);
  }
  void backdate_finish(std::int64_t id, int days) {
    sql("UPDATE nudge.reminders SET finished_at = now() - interval '1 day' * $2 WHERE id = $1", id,
        days);
  }
  void backdate_executions(std::int64_t id, int days) {
    sql("UPDATE nudge.executions SET fired_at = now() - interval '1 day' * $2 WHERE reminder_id = "
        "$1",
        id, days);
  }
  bool exists(std::int64_t id) {
    return value<bool>("SELECT EXISTS (SELECT 1 FROM nudge.reminders WHERE id = $1)", id);
  }
  // A one_time reminder that fired; its id.
  std::int64_t fired_one_time(const std::string& entity_id) {
    const std::int64_t id = create_one_time(entity_id);
    const auto fires = claim("w1");
    EXPECT_EQ(fires.size(), 1u);
    EXPECT_EQ(finish("w1", fires), 1);
    return id;
  }
};

TEST_F(PruneTest, DeletesOnlyHistoryOlderThanTheRetention) {
  const std::int64_t old_fired = fired_one_time("old_fired");
  backdate_finish(old_fired, 40);
  backdate_executions(old_fired, 40);

  const std::int64_t new_fired = fired_one_time("new_fired");
  backdate_finish(new_fired, 10);
  backdate_executions(new_fired, 10);

  const std::int64_t old_cancelled = create_recurring("old_cancelled", 60, kInAnHour);
  sql("SELECT nudge.cancel_reminder($1)", old_cancelled);
  backdate_finish(old_cancelled, 31);

  const std::int64_t old_failed = create_one_time("old_failed", kDue, kOneAttempt);
  {
    const auto fires = claim("w1");
    ASSERT_EQ(fires.size(), 1u);
    ASSERT_EQ(finish("w1", fires, "failed", "boom"), 1);
  }
  backdate_finish(old_failed, 45);
  backdate_executions(old_failed, 45);

  // Live reminders stay however old they are; their old executions go, newer ones stay.
  const std::int64_t live = create_recurring("live", 60, "now() - interval '40 days'");
  sql("UPDATE nudge.reminders SET created_at = now() - interval '400 days',"
      " updated_at = now() - interval '400 days' WHERE id = $1",
      live);
  ASSERT_EQ(finish("w1", claim("w1")), 1);
  backdate_executions(live, 35);
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 hour' WHERE id = $1", live);
  ASSERT_EQ(finish("w1", claim("w1")), 1);  // a recent execution of it
  const std::int64_t paused = create_recurring("paused", 60, "now() - interval '40 days'");
  sql("SELECT nudge.pause_reminder($1)", paused);
  sql("UPDATE nudge.reminders SET created_at = now() - interval '400 days',"
      " updated_at = now() - interval '400 days' WHERE id = $1",
      paused);

  ASSERT_EQ(count("nudge.executions"), 5);
  // Deleted: executions of old_fired, old_failed and the old one of live (3);
  // reminders old_fired, old_cancelled, old_failed (3).
  EXPECT_EQ(prune("30 days", 1000), 6);

  EXPECT_FALSE(exists(old_fired));
  EXPECT_FALSE(exists(old_cancelled));
  EXPECT_FALSE(exists(old_failed));
  EXPECT_TRUE(exists(new_fired));
  EXPECT_TRUE(exists(live));
  EXPECT_TRUE(exists(paused));
  EXPECT_EQ(executions_of(old_fired), 0);
  EXPECT_EQ(executions_of(old_failed), 0);
  EXPECT_EQ(executions_of(new_fired), 1);
  EXPECT_EQ(executions_of(live), 1);
  EXPECT_EQ(count("nudge.executions WHERE fired_at < now() - interval '30 days'"), 0);

  EXPECT_EQ(prune("30 days", 1000), 0);  // nothing left to do
  EXPECT_EQ(status(live), "ACTIVE");
  EXPECT_EQ(status(paused), "PAUSED");
}

TEST_F(PruneTest, HonoursItsLimitPerTable) {
  for (int i = 0; i < 5; ++i) {
    const std::int64_t id = fired_one_time("u" + std::to_string(i));
    backdate_finish(id, 40);
    backdate_executions(id, 40);
  }
  EXPECT_EQ(prune("30 days", 2), 4);  // 2 executions + 2 reminders
  EXPECT_EQ(count("nudge.executions"), 3);
  EXPECT_EQ(count("nudge.reminders"), 3);
  EXPECT_EQ(prune("30 days", 2), 4);
  EXPECT_EQ(prune("30 days", 2), 2);
  EXPECT_EQ(prune("30 days", 2), 0);
  EXPECT_EQ(count("nudge.executions"), 0);
  EXPECT_EQ(count("nudge.reminders"), 0);
}

TEST_F(PruneTest, DeliveryAttemptsGoWithTheSameRetention) {
  sql("INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, attempted_at, "
      "outcome,"
      " worker) SELECT 1, now(), g, now() - interval '1 day' * CASE WHEN g <= 3 THEN 40 ELSE 10 "
      "END,"
      " 'failed', 'w1' FROM generate_series(1, 5) g");
  EXPECT_EQ(prune("30 days", 2), 2) << "the limit holds for this table too";
  EXPECT_EQ(prune("30 days", 1000), 1);
  EXPECT_EQ(count("nudge.delivery_attempts"), 2);
  EXPECT_EQ(count("nudge.delivery_attempts WHERE attempted_at < now() - interval '30 days'"), 0);
}

TEST_F(PruneTest, OnlyOneOfSeveralConcurrentPrunesDoesTheWork) {
  for (int i = 0; i < 3; ++i) {
    const std::int64_t id = fired_one_time("u" + std::to_string(i));
    backdate_finish(id, 40);
    backdate_executions(id, 40);
  }
  pqxx::connection a_conn(db_.url());
  pqxx::work a(a_conn);
  EXPECT_EQ(a.exec1("SELECT nudge.prune_history(interval '30 days', 1000)")[0].as<int>(), 6);
  // While a's transaction is open, another prune steps aside instead of waiting or doubling up.
  EXPECT_EQ(prune("30 days", 1000), 0);
  a.commit();
  EXPECT_EQ(count("nudge.reminders"), 0);
  EXPECT_EQ(count("nudge.executions"), 0);
}

// Another login holding the advisory lock the prune once took its turn by (any login may hold
// one) does not stop it.
TEST_F(PruneTest, AnAdvisoryLockHeldElsewhereDoesNotStopIt) {
  const std::int64_t id = fired_one_time("u1");
  backdate_finish(id, 40);
  backdate_executions(id, 40);
  pqxx::connection other(db_.url());
  pqxx::nontransaction(other).exec("SELECT pg_advisory_lock(hashtext('nudge.prune_history'))");
  EXPECT_EQ(prune("30 days", 1000), 2);
  EXPECT_FALSE(exists(id));
}

}  // namespace
}  // namespace nudge::test
