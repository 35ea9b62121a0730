// GET /v1/targets: the circuit breakers of webhook hosts, as the workers keep them; POST
// /v1/targets/close: one closed by hand; GET /v1/targets/busy: the hosts with the most
// deliveries due or under way (counted in tests/sql/busy_hosts_test.cpp).

#include "api/api_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

class Targets : public ApiTest {
 protected:
  // Breakers as workers leave them: one closed with two failures, one open, one probing.
  void three_breakers() {
    sql("INSERT INTO nudge.target_hosts (host, consecutive_failures) VALUES "
        "('http://a.example:80', 2)");
    sql("INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at,"
        " next_probe_at, open_seconds) VALUES ('https://b.example:443', 'open', 5, now(),"
        " now() + interval '60 seconds', 60)");
    sql("INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at,"
        " next_probe_at, open_seconds, probe_worker, probe_reminder_id) VALUES"
        " ('https://c.example:8443', 'probing', 7, now(), now() + interval '30 seconds', 120,"
        " 'w1', 1)");
  }
  // `path` is a 400 naming `field`.
  void expect_refused(const std::string& path, const std::string& field) {
    const auto r = get(path);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_EQ(r.body["error"]["field"], field) << r.body.dump();
  }
};

TEST_F(Targets, ListsEveryHostWithItsStateFailuresAndProbeTime) {
  EXPECT_EQ(get("/v1/targets").body, json::parse(R"({"items":[],"next_cursor":null})"));
  three_breakers();
  const auto all = get("/v1/targets");
  ASSERT_EQ(all.status, 200) << all.body.dump();
  ASSERT_EQ(all.body["items"].size(), 3u) << all.body.dump();
  const auto& open = all.body["items"][1];
  EXPECT_EQ(open["host"], "https://b.example:443");
  EXPECT_EQ(open["state"], "open");
  EXPECT_EQ(open["failures"], 5);
  EXPECT_EQ(open["open_seconds"], 60);
  EXPECT_TRUE(open["opened_at"].is_string());
  EXPECT_TRUE(open["next_probe_at"].is_string());
  const auto& closed = all.body["items"][0];
  EXPECT_EQ(closed["state"], "closed");
  EXPECT_EQ(closed["failures"], 2);
  EXPECT_TRUE(closed["next_probe_at"].is_null());
  EXPECT_EQ(open["held"], 0) << "deliveries it holds (tests/sql/breaker_test.cpp)";
  EXPECT_FALSE(all.body["items"][2].contains("probe_worker")) << "the prober is internal";
}

TEST_F(Targets, APacedHostShowsItsPaceAndWhenItMayBeSentTo) {
  sql("INSERT INTO nudge.target_hosts (host, pace, limited_at, paced_until, next_send_at)"
      " VALUES ('http://limited.example:80', 2, now(), now() + interval '1 minute',"
      " now() + interval '5 seconds'), ('http://free.example:80', 1, now() - interval '1 hour',"
      " now() - interval '1 minute', now() - interval '1 hour')");
  const auto all = get("/v1/targets");
  ASSERT_EQ(all.status, 200) << all.body.dump();
  ASSERT_EQ(all.body["items"].size(), 2u) << all.body.dump();
  const auto& free = all.body["items"][0];
  EXPECT_TRUE(free["pace"].is_null()) << "no longer paced";
  EXPECT_TRUE(free["next_send_at"].is_null());
  const auto& limited = all.body["items"][1];
  EXPECT_EQ(limited["state"], "closed") << "a 429 is an answer";
  ASSERT_TRUE(limited["pace"].is_number()) << limited.dump();
  EXPECT_NEAR(limited["pace"].get<double>(), 2.0, 0.1);
  EXPECT_TRUE(limited["next_send_at"].is_string());

  const auto paced = get("/v1/targets?paced=true");
  ASSERT_EQ(paced.body["items"].size(), 1u) << paced.body.dump();
  EXPECT_EQ(paced.body["items"][0]["host"], "http://limited.example:80");
  const auto others = get("/v1/targets?paced=false");
  ASSERT_EQ(others.body["items"].size(), 1u) << others.body.dump();
  EXPECT_EQ(others.body["items"][0]["host"], "http://free.example:80");
  expect_refused("/v1/targets?paced=yes", "paced");
}

// Slack limits each incoming-webhook URL: a URL that answered 429 is paced on its own (0135),
// and its host is listed as paced with it.
TEST_F(Targets, AHostWithAUrlPacedOnItsOwnListsIt) {
  sql("INSERT INTO nudge.target_hosts (host) VALUES ('https://hooks.example:443'),"
      " ('https://quiet.example:443')");
  sql("INSERT INTO nudge.paced_targets (url, host, pace, limited_at, paced_until, next_send_at,"
      " refused_at) VALUES ('https://hooks.example:443/services/T1', 'https://hooks.example:443',"
      " 1, now(), now() + interval '1 minute', now() + interval '3 seconds', now()),"
      " ('https://hooks.example:443/services/T2', 'https://hooks.example:443', 1,"
      " now() - interval '1 hour', now() - interval '1 minute', now(), now())");
  const auto paced = get("/v1/targets?paced=true");
  ASSERT_EQ(paced.status, 200) << paced.body.dump();
  ASSERT_EQ(paced.body["items"].size(), 1u) << paced.body.dump();
  const auto& host = paced.body["items"][0];
  EXPECT_EQ(host["host"], "https://hooks.example:443");
  EXPECT_TRUE(host["pace"].is_null()) << "the host is not paced whole";
  EXPECT_EQ(host["paced_url_count"], 1) << "T2 is no longer paced";
  ASSERT_EQ(host["paced_urls"].size(), 1u) << host.dump();
  EXPECT_EQ(host["paced_urls"][0]["url"], "https://hooks.example:443/services/T1");
  EXPECT_NEAR(host["paced_urls"][0]["pace"].get<double>(), 1.0, 0.1);
  EXPECT_TRUE(host["paced_urls"][0]["next_send_at"].is_string());
  const auto others = get("/v1/targets?paced=false");
  ASSERT_EQ(others.body["items"].size(), 1u) << others.body.dump();
  EXPECT_EQ(others.body["items"][0]["paced_urls"].size(), 0u);
  // Closing the host ends its URLs' pacing, and the answer says so (explore27a L2: it listed
  // them, read in the snapshot of the statement that deleted them).
  const auto closed = post("/v1/targets/close", R"({"host": "https://hooks.example:443"})");
  ASSERT_EQ(closed.status, 200) << closed.body.dump();
  EXPECT_EQ(closed.body["paced_url_count"], 0) << closed.body.dump();
  EXPECT_EQ(closed.body["paced_urls"].size(), 0u);
}

TEST_F(Targets, FiltersByStateAndPagesByHost) {
  three_breakers();
  const auto probing = get("/v1/targets?state=probing");
  ASSERT_EQ(probing.status, 200) << probing.body.dump();
  ASSERT_EQ(probing.body["items"].size(), 1u);
  EXPECT_EQ(probing.body["items"][0]["host"], "https://c.example:8443");

  const auto first = get("/v1/targets?limit=2");
  ASSERT_EQ(first.body["items"].size(), 2u);
  ASSERT_TRUE(first.body["next_cursor"].is_string());
  const auto rest =
      get("/v1/targets?limit=2&cursor=" + first.body["next_cursor"].get<std::string>());
  ASSERT_EQ(rest.body["items"].size(), 1u) << rest.body.dump();
  EXPECT_EQ(rest.body["items"][0]["host"], "https://c.example:8443");
  EXPECT_TRUE(rest.body["next_cursor"].is_null());
}

TEST_F(Targets, AnUnknownStateOrParameterIsRefusedNamingIt) {
  expect_refused("/v1/targets?state=half-open", "state");
  expect_refused("/v1/targets?host=x", "host");
}

TEST_F(Targets, TheBusyHostsAreListedWithTheirDeliveriesDueAndUnderWay) {
  EXPECT_EQ(get("/v1/targets/busy").body,
            json::parse(R"({"hosts": [], "read": 0, "read_cap": 10000})"));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(post("/v1/reminders", R"({"entity_type": "e", "entity_id": ")" + std::to_string(i) +
                                        R"(", "event_type": "x", "channel": "webhook",
                 "target": "https://hooks.example/in", "schedule_type": "one_time",
                 "run_at": "2020-01-01T00:00:00Z"})")
                  .status,
              201);
  }
  const auto busy = get("/v1/targets/busy?limit=5");
  ASSERT_EQ(busy.status, 200) << busy.body.dump();
  ASSERT_EQ(busy.body["hosts"].size(), 1u) << busy.body.dump();
  EXPECT_EQ(busy.body["hosts"][0]["host"], "https://hooks.example:443");
  EXPECT_EQ(busy.body["hosts"][0]["due"], 3);
  EXPECT_EQ(busy.body["hosts"][0]["in_flight"], 0);
  EXPECT_EQ(busy.body["hosts"][0]["breaker"], "closed");
  EXPECT_GT(busy.body["hosts"][0]["oldest_due_seconds"].get<double>(), 3600.0 * 24 * 365);

  expect_refused("/v1/targets/busy?limit=0", "limit");
  expect_refused("/v1/targets/busy?state=open", "state");
}

// A receiver known to be back: its breaker is closed by hand, audited with the caller.
TEST_F(Targets, ABreakerIsClosedByHandAndAnUnknownHostIs404) {
  three_breakers();
  const auto closed = post("/v1/targets/close", R"({"host": "https://b.example:443"})");
  ASSERT_EQ(closed.status, 200) << closed.body.dump();
  EXPECT_EQ(closed.body["host"], "https://b.example:443");
  EXPECT_EQ(closed.body["state"], "closed");
  EXPECT_EQ(closed.body["failures"], 0);
  EXPECT_TRUE(closed.body["next_probe_at"].is_null());
  EXPECT_EQ(value<std::string>("SELECT route FROM nudge.audit WHERE subject_type = 'target'"),
            "POST /v1/targets/close");
  const auto unknown = post("/v1/targets/close", R"({"host": "https://z.example:443"})");
  EXPECT_EQ(unknown.status, 404) << unknown.body.dump();
  EXPECT_NE(unknown.body["error"]["message"].get<std::string>().find("no circuit breaker"),
            std::string::npos);
  for (const char* body : {"{}", R"({"host": ""})", R"({"host": 1})", R"({"hots": "x"})"}) {
    const auto bad = post("/v1/targets/close", body);
    EXPECT_EQ(bad.status, 400) << body;
  }
  EXPECT_EQ(post("/v1/targets/close", "{}").error_field(), "host");
}

// The deliveries a closed breaker held are due at once, and a sleeping worker is told: the API's
// sessions do not NOTIFY, and the worker slept until the breaker's old probe time (a hand check
// on a fresh clone: 8 deliveries went out 53 s after the close).
TEST_F(Targets, ClosingABreakerWakesASleepingWorkerForWhatItHeld) {
  WebhookReceiver receiver;
  const std::string url = receiver.url("/back");
  const std::string host = value<std::string>("SELECT nudge.target_host($1)", url);
  const std::string probe_at = value<std::string>("SELECT (now() + interval '1 hour')::text");
  sql("INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at,"
      " next_probe_at, open_seconds) VALUES ($1, 'open', 5, now(), $2, 3600)",
      host, probe_at);
  // Held as a finish holds one: waiting for the probe time.
  sql("SELECT nudge.create_reminder('user', 'held', 'e', 'webhook', 'one_time', p_run_at => $1, "
      "p_target => $2)",
      probe_at, url);
  ChildProcess worker({program("nudge-worker")},
                      {{"NUDGE_DATABASE_URL", db_.url()},
                       {"NUDGE_WORKER_IDLE_CAP_SECONDS", "300"},
                       {kAllowPrivate, kLoopbackNetworks}},
                      log_.string() + ".worker");
  ASSERT_TRUE(wait_until(60s, [&] {  // asleep: its last statement asked when work is due
    return value<long>(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
               "AND state = 'idle' AND query LIKE '%nudge.seconds_until_due%'") >= 2;
  })) << worker.log();
  ASSERT_EQ(post("/v1/targets/close", json{{"host", host}}.dump()).status, 200);
  EXPECT_TRUE(wait_until(10s, [&] { return receiver.requests_to("/back").size() == 1; }))
      << worker.log();
  worker.remove_logs();
}

}  // namespace
}  // namespace nudge::test
