// nudge.gauges, read by every worker's /metrics: the due backlog (due ACTIVE reminders no live
// lease holds, counted up to a cap) and how long the earliest of them has been due.

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class Gauges : public LifecycleTest {
 protected:
  // name -> value of every row nudge.gauges(cap) answers.
  std::map<std::string, double> gauges(int cap = 10000) {
    std::map<std::string, double> out;
    for (const auto& row : sql("SELECT name, value FROM nudge.gauges($1)", cap))
      out[row[0].c_str()] = row[1].as<double>();
    return out;
  }
};

TEST_F(Gauges, CountTheDueBacklogAndTheAgeOfItsOldest) {
  const std::int64_t held = create_one_time("held", "now() - interval '30 minutes'");
  ASSERT_EQ(claim("w1", 1).size(), 1u);  // a live lease: a worker has it
  create_one_time("a", "now() - interval '10 minutes'");
  create_one_time("b", kDue);
  create_one_time("later", kInAnHour);
  const std::int64_t paused = create_one_time("paused", "now() - interval '20 minutes'");
  sql("SELECT nudge.pause_reminder($1)", paused);

  const auto g = gauges();
  // and nudge_breaker_hosts, nudge_held_deliveries (tests/sql/breaker_test.cpp),
  // nudge_workers_connected (below), nudge_rule_failures_total (tests/sql/events_test.cpp);
  // nudge_breaker_open_seconds has no series while no breaker is open
  ASSERT_EQ(g.size(), 9u);
  EXPECT_EQ(g.at("nudge_paced_hosts"), 0);
  EXPECT_EQ(g.at("nudge_paced_deliveries"), 0);
  EXPECT_EQ(g.at("nudge_oldest_paced_seconds"), 0);
  EXPECT_EQ(g.at("nudge_due_reminders"), 2);
  EXPECT_GE(g.at("nudge_oldest_due_seconds"), 600);
  EXPECT_LT(g.at("nudge_oldest_due_seconds"), 700);
  EXPECT_EQ(reminder(held)["leased_by"].as<std::string>(), "w1");
}

// A paced host's or URL's deliveries wait for their send times, not due: they have gauges of their
// own (explore24a #2: 1,207 webhooks up to 16.5 minutes late read 0 in the backlog gauges).
TEST_F(Gauges, ABacklogAPacedHostOrUrlHoldsIsCountedWithItsOldest) {
  for (int i = 0; i < 4; ++i)
    create("p_entity_type => 'user', p_entity_id => 'p" + std::to_string(i) +
           "', p_event_type => 'nudge', p_channel => 'webhook', p_target =>"
           " 'http://limited.example/hook', p_schedule_type => 'one_time', p_run_at => now() -"
           " interval '10 minutes'");
  create(
      "p_entity_type => 'user', p_entity_id => 'other', p_event_type => 'nudge', p_channel =>"
      " 'webhook', p_target => 'http://other.example/hook', p_schedule_type => 'one_time',"
      " p_run_at => now() - interval '20 minutes'");
  // As a claim leaves them: held a pace apart, their occurrences kept.
  sql("UPDATE nudge.reminders SET occurrence_at = next_run_at,"
      " next_run_at = now() + (id % 5 + 1) * interval '1 second'");
  sql("INSERT INTO nudge.target_hosts (host, pace, limited_at, paced_until, next_send_at)"
      " VALUES ('http://limited.example:80', 1, now(), now() + interval '5 minutes', now())");
  const auto g = gauges();
  EXPECT_EQ(g.at("nudge_paced_hosts"), 1);
  EXPECT_EQ(g.at("nudge_paced_deliveries"), 4) << "not the other host's";
  EXPECT_GE(g.at("nudge_oldest_paced_seconds"), 600);
  EXPECT_LT(g.at("nudge_oldest_paced_seconds"), 700);
  EXPECT_EQ(g.at("nudge_due_reminders"), 0);

  // A URL paced on its own (0135) counts too, and its host once.
  sql("UPDATE nudge.reminders SET next_run_at = now() + interval '10 seconds'");
  // As a 429 leaves them: its host's row (a closed breaker), then its URL's.
  sql("INSERT INTO nudge.target_hosts (host) VALUES ('http://other.example:80')");
  sql("INSERT INTO nudge.paced_targets (url, host, pace, limited_at, paced_until, next_send_at,"
      " refused_at) VALUES ('http://other.example:80/hook', 'http://other.example:80', 1, now(),"
      " now() + interval '5 minutes', now(), now()), ('http://limited.example:80/hook',"
      " 'http://limited.example:80', 1, now(), now() + interval '5 minutes', now(), now())");
  const auto urls = gauges();
  EXPECT_EQ(urls.at("nudge_paced_hosts"), 2);
  EXPECT_EQ(urls.at("nudge_paced_deliveries"), 5);
  EXPECT_GE(urls.at("nudge_oldest_paced_seconds"), 1200);
}

TEST_F(Gauges, AnExpiredLeaseCountsAsWaiting) {
  const std::int64_t id = create_one_time("u1", "now() - interval '2 minutes'");
  ASSERT_EQ(claim("w-dead").size(), 1u);
  EXPECT_EQ(gauges().at("nudge_due_reminders"), 0);
  sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
      id);
  EXPECT_EQ(gauges().at("nudge_due_reminders"), 1);
  EXPECT_GE(gauges().at("nudge_oldest_due_seconds"), 120);
}

TEST_F(Gauges, TheBacklogIsCountedOnlyUpToTheCap) {
  for (int i = 0; i < 5; ++i) create_one_time("u" + std::to_string(i));
  EXPECT_EQ(gauges(3).at("nudge_due_reminders"), 3);
  EXPECT_EQ(gauges(5).at("nudge_due_reminders"), 5);
  EXPECT_EQ(value<std::string>("SELECT help FROM nudge.gauges(3) WHERE name = "
                               "'nudge_due_reminders'"),
            "Due ACTIVE reminders no worker holds, counted up to 3.");
}

TEST_F(Gauges, NothingDueIsZero) {
  create_one_time("later", kInAnHour);
  const auto g = gauges();
  EXPECT_EQ(g.at("nudge_due_reminders"), 0);
  EXPECT_EQ(g.at("nudge_oldest_due_seconds"), 0);
}

// Worker processes are told apart by their claim loops' sessions (application_name
// "<host>:<pid>:<8 hex>/<loop>"); the API's and a worker's other sessions are not loops. With
// none, the dashboard and an alert can say nothing is delivered (explore18a #3).
TEST_F(Gauges, WorkersConnectedAreCountedByTheirClaimLoopsSessions) {
  EXPECT_EQ(gauges().at("nudge_workers_connected"), 0);
  std::vector<std::unique_ptr<pqxx::connection>> sessions;
  for (const char* name : {"host-a:12:0a1b2c3d/0", "host-a:12:0a1b2c3d/1", "host-b:7:ffff0000/0",
                           "host-b:9:12345678/maintenance", "host-c:5:abcdef01/api"}) {
    sessions.push_back(std::make_unique<pqxx::connection>(db_.url()));
    pqxx::nontransaction(*sessions.back())
        .exec("SET application_name = " + sessions.back()->quote(name));
  }
  EXPECT_EQ(gauges().at("nudge_workers_connected"), 2);
  EXPECT_EQ(value<long>("SELECT (nudge.overview()->>'workers')::bigint"), 2);
  sessions.clear();
  EXPECT_TRUE(wait_until(std::chrono::seconds(10),
                         [&] { return gauges().at("nudge_workers_connected") == 0; }));
}

// A worker login upgraded to 0120 before its SELECT on nudge.rule_failures is granted: that one
// sample is missing (and /readyz's grants check names the grant), not every gauge of /metrics.
TEST_F(Gauges, ALoginWithoutTheRuleFailuresGrantStillGetsTheOtherGauges) {
  pqxx::work tx(conn_);
  tx.exec(
      "CREATE ROLE nudge_gauges_reader; GRANT USAGE ON SCHEMA nudge TO nudge_gauges_reader;"
      " GRANT SELECT ON nudge.reminders, nudge.target_hosts, nudge.paced_targets"
      " TO nudge_gauges_reader;"
      " SET LOCAL ROLE nudge_gauges_reader");
  std::map<std::string, std::optional<double>> seen;
  for (const auto& row : tx.exec("SELECT name, value FROM nudge.gauges(100)"))
    seen[row[0].c_str()] = row[1].is_null() ? std::nullopt : std::optional(row[1].as<double>());
  EXPECT_EQ(seen.at("nudge_rule_failures_total"), std::nullopt);
  EXPECT_EQ(seen.at("nudge_due_reminders"), 0);
  tx.abort();  // the role goes with it
}

}  // namespace
}  // namespace nudge::test
