// nudge.overview, read by the dashboard on every view of its overview: counts by status (exact
// while the table is small, estimated from statistics past the threshold), the due backlog, the
// last hour's fires and the gauges.

#include <nlohmann/json.hpp>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using nlohmann::json;

class Overview : public LifecycleTest {
 protected:
  json overview(const std::string& args = "") {
    return json::parse(value<std::string>("SELECT nudge.overview(" + args + ")::text"));
  }
};

TEST_F(Overview, CountsEveryStatusExactlyWhileTheTableIsSmall) {
  create_one_time("a", kInAnHour);
  create_one_time("b", kInAnHour);
  const std::int64_t paused = create_one_time("c", kInAnHour);
  sql("SELECT nudge.pause_reminder($1)", paused);
  const std::int64_t cancelled = create_one_time("d", kInAnHour);
  sql("SELECT nudge.cancel_reminder($1)", cancelled);

  const json o = overview();
  EXPECT_FALSE(o["counts_estimated"].get<bool>());
  EXPECT_EQ(o["counts"], json::parse(R"({"ACTIVE": 2, "PAUSED": 1, "CANCELLED": 1})"));
  EXPECT_EQ(o["due_now"], 0);
  EXPECT_EQ(o["oldest_due_seconds"], 0);
}

TEST_F(Overview, ShowsTheDueBacklogAndItsOldestFromTheGauges) {
  create_one_time("old", "now() - interval '10 minutes'");
  create_one_time("new", kDue);
  create_one_time("later", kInAnHour);

  const json o = overview("p_due_cap => 1");
  EXPECT_EQ(o["due_now"], 1);  // counted up to the cap
  EXPECT_EQ(o["due_now_cap"], 1);
  EXPECT_GE(o["oldest_due_seconds"].get<double>(), 600);
  ASSERT_TRUE(o["gauges"].is_array());
  EXPECT_EQ(o["gauges"].size(),
            value<std::int64_t>("SELECT count(*) FROM nudge.gauges(1)"));  // every gauge
}

TEST_F(Overview, CountsTheLastHoursDeliveredAndFailedFires) {
  create_one_time("ok");
  create_one_time("bad", kDue, kOneAttempt);
  const auto fires = claim("w1", 10);
  ASSERT_EQ(fires.size(), 2u);
  for (const auto& f : fires) {
    const bool ok = reminder(f.id)["entity_id"].as<std::string>() == "ok";
    finish("w1", {f}, ok ? "delivered" : "failed",
           ok ? std::nullopt : std::optional<std::string>("HTTP 500"));
  }
  // A fire from two hours ago is outside the hour.
  sql("INSERT INTO nudge.executions (reminder_id, scheduled_for, fired_at, outcome, attempts, "
      "worker) VALUES (0, now() - interval '2 hours', now() - interval '2 hours', 'delivered', "
      "1, 'w0')");

  const json o = overview();
  EXPECT_EQ(o["last_hour"], json::parse(R"({"delivered": 1, "failed": 1})"));
  EXPECT_EQ(o["counts"]["FAILED"], 1);
  EXPECT_EQ(o["counts"]["COMPLETED"], 1);
}

TEST_F(Overview, EstimatesTheCountsFromStatisticsPastTheThreshold) {
  sql("SELECT nudge.create_reminders(jsonb_agg(jsonb_build_object('entity_type', 'user', "
      "'entity_id', 'u' || i, 'event_type', 'e', 'channel', 'log', 'schedule_type', 'one_time', "
      "'run_at', now() + interval '1 day'))) FROM generate_series(1, 3000) i");
  sql("SELECT nudge.pause_reminders(p_entity_type => 'user', p_ids => (SELECT "
      "array_agg(id) FROM (SELECT id FROM nudge.reminders ORDER BY id LIMIT 1000) f))");
  sql("ANALYZE nudge.reminders");

  const json o = overview("p_exact_below => 100");
  EXPECT_TRUE(o["counts_estimated"].get<bool>());
  // ANALYZE read every row of a table this small: the estimate is the count.
  EXPECT_NEAR(o["counts"]["ACTIVE"].get<double>(), 2000, 20);
  EXPECT_NEAR(o["counts"]["PAUSED"].get<double>(), 1000, 20);
}

TEST_F(Overview, PlansNoScanOfTheRemindersPastTheThreshold) {
  sql("SELECT nudge.create_reminders(jsonb_agg(jsonb_build_object('entity_type', 'user', "
      "'entity_id', 'u' || i, 'event_type', 'e', 'channel', 'log', 'schedule_type', 'one_time', "
      "'run_at', now() + interval '1 day'))) FROM generate_series(1, 500) i");
  sql("ANALYZE nudge.reminders");
  // The scans this backend counted (pg_stat_xact_user_tables: not yet flushed), around the call.
  pqxx::work tx(conn_);
  const std::string scans =
      "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables "
      "WHERE relid = 'nudge.reminders'::regclass";
  const auto before = tx.exec1(scans);
  tx.exec("SELECT nudge.overview(p_exact_below => 100)");
  const auto after = tx.exec1(scans);
  EXPECT_EQ(after[0].as<long>() - before[0].as<long>(), 0);
  EXPECT_EQ(after[1].as<long>() - before[1].as<long>(), 2);  // the due backlog and its oldest
}

}  // namespace
}  // namespace nudge::test
