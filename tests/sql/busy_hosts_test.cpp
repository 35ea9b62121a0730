// nudge.busy_hosts (GET /v1/targets/busy): where the webhook work of the moment waits or runs, by
// host, a slow host that never fails included; counted among the earliest due rows, up to a cap.

#include <nlohmann/json.hpp>
#include <string>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using json = nlohmann::json;

class BusyHosts : public LifecycleTest {
 protected:
  json busy(int limit = 20, int read_cap = 10000) {
    return json::parse(
        value<std::string>("SELECT nudge.busy_hosts($1, $2)::text", limit, read_cap));
  }
  // `n` webhooks to `target` due `ago` seconds ago and more, 1 s apart.
  void due(int n, const std::string& target, int ago) {
    sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, target,"
        " schedule_type, next_run_at)"
        " SELECT 'e', $1 || g, 'x', 'webhook', $1, 'one_time', now() - ($2 + g) * interval '1 s'"
        " FROM generate_series(0, $3 - 1) g",
        target, ago, n);
  }
};

TEST_F(BusyHosts, CountsEachHostsDeliveriesUnderWayAndDueBusiestFirst) {
  EXPECT_EQ(busy(), json::parse(R"({"hosts": [], "read": 0, "read_cap": 10000})"));
  due(3, "https://slow.example/hook", 60);
  due(2, "https://fast.example:8443/a?x=1", 10);
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
      " next_run_at) SELECT 'l', g::text, 'x', 'log', 'one_time', now() FROM generate_series(1, 2) "
      "g");
  // Two of the slow host's are leased to a worker (under way); one of the fast one's lease ran out.
  sql("UPDATE nudge.reminders SET leased_by = 'w1', lease_expires_at = now() + interval '1 min'"
      " WHERE id IN (SELECT id FROM nudge.reminders WHERE target LIKE 'https://slow%' LIMIT 2)");
  sql("UPDATE nudge.reminders SET leased_by = 'w2', lease_expires_at = now() - interval '1 s'"
      " WHERE id = (SELECT min(id) FROM nudge.reminders WHERE target LIKE 'https://fast%')");
  // Not due: a retry waiting for its time.
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, target,"
      " schedule_type, next_run_at) VALUES ('e', 'later', 'x', 'webhook',"
      " 'https://later.example/', 'one_time', now() + interval '1 min')");
  sql("INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at,"
      " next_probe_at, open_seconds) VALUES ('https://fast.example:8443', 'open', 5, now(),"
      " now() + interval '60 seconds', 60)");

  const json b = busy();
  EXPECT_EQ(b["read"], 7) << "every due row, whatever its channel";
  ASSERT_EQ(b["hosts"].size(), 2u) << b.dump();
  const json& slow = b["hosts"][0];
  EXPECT_EQ(slow["host"], "https://slow.example:443") << "the breaker key";
  EXPECT_EQ(slow["in_flight"], 2);
  EXPECT_EQ(slow["due"], 1);
  EXPECT_EQ(slow["breaker"], "closed") << "a host without a breaker row";
  EXPECT_GE(slow["oldest_due_seconds"].get<double>(), 60);
  const json& fast = b["hosts"][1];
  EXPECT_EQ(fast["host"], "https://fast.example:8443");
  EXPECT_EQ(fast["in_flight"], 0);
  EXPECT_EQ(fast["due"], 2) << "an expired lease is due again";
  EXPECT_EQ(fast["breaker"], "open");

  sql("UPDATE nudge.reminders SET leased_by = 'w1', lease_expires_at = now() + interval '1 min'"
      " WHERE target LIKE 'https://slow%'");
  EXPECT_EQ(busy()["hosts"][0]["oldest_due_seconds"], 0) << "none of its due: all under way";
}

TEST_F(BusyHosts, AContactsAddressCountsUnderItsHost) {
  sql("SELECT nudge.put_contact('user', 'u1', 'webhook', 'http://hooks.example/u1')");
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
      " next_run_at) VALUES ('user', 'u1', 'x', 'webhook', 'one_time', now())");
  const json b = busy();
  ASSERT_EQ(b["hosts"].size(), 1u) << b.dump();
  EXPECT_EQ(b["hosts"][0]["host"], "http://hooks.example:80");
  EXPECT_EQ(b["hosts"][0]["due"], 1);
}

TEST_F(BusyHosts, TheCapBoundsTheRowsReadAndTheLimitTheHosts) {
  due(5, "https://a.example/", 100);  // the earliest
  due(3, "https://b.example/", 10);
  due(1, "https://c.example/", 0);
  const json capped = busy(20, 6);
  EXPECT_EQ(capped["read"], 6);
  EXPECT_EQ(capped["read_cap"], 6);
  ASSERT_EQ(capped["hosts"].size(), 2u) << capped.dump();
  EXPECT_EQ(capped["hosts"][0]["due"], 5);
  EXPECT_EQ(capped["hosts"][1]["due"], 1) << "the earliest 6 rows hold one of b's";
  const json one = busy(1);
  ASSERT_EQ(one["hosts"].size(), 1u);
  EXPECT_EQ(one["hosts"][0]["host"], "https://a.example:443");
  EXPECT_EQ(one["read"], 9);
}

}  // namespace
}  // namespace nudge::test
