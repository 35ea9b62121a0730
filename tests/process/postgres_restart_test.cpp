// PostgreSQL restarting under running workers: they reconnect with backoff and carry on, and no
// occurrence is lost, doubled, or left waiting for a lease to expire.

#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>

#include "process/process_fixture.hpp"
#include "support/sse_client.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

// A throwaway cluster of this test's own (scripts/pg.sh), so restarting it disturbs nobody.
class OwnCluster {
 public:
  explicit OwnCluster(std::string script) : script_(std::move(script)) { pick_port(); }
  ~OwnCluster() { clear(); }
  // Creates and starts it. A free port can be taken before the server binds it (another
  // process's connection, under load): then again on another, up to three times. What pg.sh
  // said goes to `said`.
  bool start(std::string& said) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (run("start")) return true;
      std::ifstream log(dir_ + ".log");
      said.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
      clear();
      pick_port();
    }
    return false;
  }
  bool run(const std::string& verb) const {
    const std::string cmd = "env -u NUDGE_DATABASE_URL NUDGE_PG_PORT=" + std::to_string(port_) +
                            " NUDGE_PG_DIR=" + dir_ + " bash " + script_ + " " + verb + " >>" +
                            dir_ + ".log 2>&1";
    return std::system(cmd.c_str()) == 0;
  }
  std::string url() const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/nudge";
  }

 private:
  void pick_port() {
    port_ = free_tcp_port();
    dir_ = "/tmp/nudge-restart-" + std::to_string(::getpid()) + "-" + std::to_string(port_);
  }
  void clear() {
    run("stop");
    std::filesystem::remove_all(dir_);
    std::filesystem::remove(dir_ + ".log");
  }

  std::string script_;
  int port_ = 0;
  std::string dir_;
};

class PostgresRestart : public ProcessTest {
 protected:
  // scripts/test.sh always sets NUDGE_PG_SCRIPT, so CI runs every test here; only a hand-run
  // test binary without it (e.g. against a server it must not restart) skips them.
  void SetUp() override {
    script_ = std::getenv("NUDGE_PG_SCRIPT");
    if (script_ == nullptr) GTEST_SKIP() << "NUDGE_PG_SCRIPT is not set: no cluster to restart";
  }

  // Starts the test's own cluster and migrates it, as an operator would.
  ::testing::AssertionResult start_migrated(OwnCluster& cluster) {
    if (std::string said; !cluster.start(said))
      return ::testing::AssertionFailure() << "the cluster did not start:\n" << said;
    ChildProcess migrate({program("nudge-worker"), "--migrate-only"}, worker_env(cluster.url()),
                         (dir_ / "migrate.log").string());
    if (migrate.wait(kSlow) != 0) return ::testing::AssertionFailure() << migrate.log();
    return ::testing::AssertionSuccess();
  }

  const char* script_ = nullptr;  // scripts/pg.sh, which starts and stops the test's own cluster
};

TEST_F(PostgresRestart, PostgresRestartLosesNothing) {
  OwnCluster cluster(script_);
  ASSERT_TRUE(start_migrated(cluster));
  std::unique_ptr<pqxx::connection> conn;
  auto query = [&](const std::string& q) {
    for (;;) {  // the server may be mid-restart: ask again on a new connection
      try {
        if (!conn) conn = std::make_unique<pqxx::connection>(cluster.url());
        pqxx::work tx(*conn);
        auto r = tx.exec(q);
        tx.commit();
        return r;
      } catch (const pqxx::broken_connection&) {
        conn.reset();
        std::this_thread::sleep_for(100ms);
      }
    }
  };

  // 3,000 one_time reminders due over the next 6 s, and 10 recurring every second.
  query(
      "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
      "next_run_at) SELECT 'once', g::text, 'e', 'log', 'one_time', "
      "now() + (g % 6000) * interval '1 millisecond' FROM generate_series(1, 3000) g");
  query(
      "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
      "interval_seconds, next_run_at) SELECT 'every', g::text, 'e', 'log', 'recurring', 1, "
      "now() FROM generate_series(1, 10) g");

  const std::map<std::string, std::string> settings{{"NUDGE_WORKER_LEASE_SECONDS", "120"},
                                                    {"NUDGE_WORKER_RECONNECT_MAX_MS", "500"},
                                                    {"NUDGE_WORKER_BATCH_SIZE", "100"}};
  start_worker(settings, cluster.url());
  start_worker(settings, cluster.url());
  auto once_fired = [&] {
    return query(
               "SELECT count(*) FROM nudge.executions e JOIN nudge.reminders r ON r.id = "
               "e.reminder_id WHERE r.entity_type = 'once'")[0][0]
        .as<long>();
  };

  // Restart twice while reminders are still coming due.
  for (long at : {500L, 1800L}) {
    ASSERT_TRUE(wait_until(kSlow, [&] { return once_fired() >= at; })) << all_logs();
    ASSERT_TRUE(cluster.run("restart"));
  }

  // Everything fires well before a 120 s lease could have expired.
  ASSERT_TRUE(wait_until(30s, [&] { return once_fired() == 3000; })) << all_logs();
  EXPECT_EQ(query("SELECT count(*) FROM nudge.reminders WHERE entity_type = 'once' AND "
                  "(status <> 'COMPLETED' OR leased_by IS NOT NULL)")[0][0]
                .as<long>(),
            0);
  // The recurring ones kept firing after the restarts, once per occurrence (the key says so).
  const long recurring = query("SELECT count(*) FROM nudge.executions")[0][0].as<long>() - 3000;
  EXPECT_GT(recurring, 10);
  for (auto& w : workers_) EXPECT_TRUE(w->running()) << w->log();
  EXPECT_NE(all_logs().find("reconnected to the database"), std::string::npos) << all_logs();

  for (auto& w : workers_) w->signal(SIGTERM);
  for (auto& w : workers_) EXPECT_EQ(w->wait(kSlow), 0) << w->log();
  // Delivered once each: a restart neither lost nor repeated a fire.
  const auto keys = delivered_keys();
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), keys.size());
  EXPECT_EQ(static_cast<long>(keys.size()),
            query("SELECT count(*) FROM nudge.executions")[0][0].as<long>())
      << query(
             "SELECT string_agg(reminder_id || ' ' || outcome || ' ' || attempts || ' ' || "
             "coalesce(error, ''), E'\\n') FROM nudge.executions WHERE outcome <> 'delivered' "
             "OR attempts > 1")[0][0]
             .c_str();
}

// Deliveries under way when PostgreSQL goes away are driven while the worker waits for it: an
// answer that arrives meanwhile is a delivery, recorded when the database is back. (Undriven,
// libcurl found its timeout long past and failed them: sent again, counted against a healthy
// host's breaker, and FAILED under max_attempts 1.)
TEST_F(PostgresRestart, WebhooksAnsweredWhilePostgresIsDownAreRecordedDelivered) {
  OwnCluster cluster(script_);
  ASSERT_TRUE(start_migrated(cluster));
  WebhookReceiver receiver;
  std::atomic<bool> release{false};
  receiver.on("/later", [&](int) {
    while (!release && !receiver.stopping()) std::this_thread::sleep_for(5ms);
    return 200;
  });
  {
    pqxx::connection conn(cluster.url());
    pqxx::work tx(conn);
    tx.exec_params(
        "SELECT count(*) FROM generate_series(1, 20) g, LATERAL nudge.create_reminder("
        "p_entity_type => 'c', p_entity_id => g::text, p_event_type => 'e', p_channel => "
        "'webhook', p_schedule_type => 'one_time', p_run_at => now(), p_target => $1, "
        "p_max_attempts => 1)",
        receiver.url("/later"));
    tx.commit();
  }
  start_worker({{"NUDGE_WEBHOOK_TIMEOUT_MS", "10000"},
                {"NUDGE_WORKER_RECONNECT_MAX_MS", "500"},
                {"NUDGE_WORKER_CONCURRENCY", "1"},
                {"NUDGE_WORKER_LEASE_SECONDS", "120"}},
               cluster.url());
  ASSERT_TRUE(wait_until(kSlow, [&] { return receiver.requests_to("/later").size() == 20; }))
      << all_logs();
  const auto sent = std::chrono::steady_clock::now();
  // The answers go out once the worker is trying to reconnect (stopping the database may take
  // seconds on a loaded machine), well within the 10 s timeout; the database stays down past
  // it, counted from the requests.
  bool stopped = false;
  std::thread stop([&] { stopped = cluster.run("stop"); });
  const bool lost = wait_until(
      10s, [&] { return all_logs().find("database unreachable, retrying") != std::string::npos; });
  release = true;
  stop.join();
  ASSERT_TRUE(stopped);
  ASSERT_TRUE(lost) << all_logs();
  std::this_thread::sleep_until(sent + 12s);
  ASSERT_TRUE(cluster.run("start"));

  pqxx::connection conn(cluster.url());
  auto count = [&](const std::string& q) { return pqxx::work(conn).exec1(q)[0].as<long>(); };
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return count("SELECT count(*) FROM nudge.executions") == 20;
  })) << all_logs();
  EXPECT_EQ(count("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered' "
                  "AND attempts = 1"),
            20)
      << all_logs();
  EXPECT_EQ(count("SELECT count(*) FROM nudge.target_hosts WHERE consecutive_failures > 0"), 0)
      << "the database's outage is not the host's";
  EXPECT_EQ(receiver.requests_to("/later").size(), 20u) << "none sent twice";
}

// The API's pooled connections die with a restart; the first request after it gets a live one
// (a closed connection is noticed when it is handed out, without a round trip), not a 503.
TEST_F(PostgresRestart, TheApiAnswersTheFirstRequestsAfterARestart) {
  OwnCluster cluster(script_);
  ASSERT_TRUE(start_migrated(cluster));
  const int port = free_tcp_port();
  ChildProcess api({program("nudge-api")},
                   {{"NUDGE_DATABASE_URL", cluster.url()},
                    {"NUDGE_API_PORT", std::to_string(port)},
                    {"NUDGE_API_AUTH", "off"}},
                   (dir_ / "api.log").string());
  httplib::Client client("127.0.0.1", port);
  auto status = [&] {
    const auto r = client.Get("/v1/reminders?limit=1");
    return r ? r->status : 0;
  };
  ASSERT_TRUE(wait_until(kSlow, [&] { return status() == 200; })) << api.log();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(status(), 200);
  ASSERT_TRUE(cluster.run("restart"));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(status(), 200) << "request " << i << "\n" << api.log();
}

// A live stream held open while the database is down gets pings and nothing else: it says that
// it stalled, then that it resumed, and the changes made meanwhile follow (explore30b F1: the
// dashboard read "live" through a 20 s outage, and a view that failed then never reloaded).
TEST_F(PostgresRestart, TheLiveStreamSaysWhileTheDatabaseIsGoneAndWhenItIsBack) {
  OwnCluster cluster(script_);
  ASSERT_TRUE(start_migrated(cluster));
  const int port = free_tcp_port();
  ChildProcess api({program("nudge-api")},
                   {{"NUDGE_DATABASE_URL", cluster.url()},
                    {"NUDGE_API_PORT", std::to_string(port)},
                    {"NUDGE_API_STREAM_HEARTBEAT_SECONDS", "1"},
                    {"NUDGE_API_AUTH", "off"}},
                   (dir_ / "api.log").string());
  httplib::Client client("127.0.0.1", port);
  ASSERT_TRUE(wait_until(kSlow, [&] {
    const auto r = client.Get("/v1/reminders?limit=1");
    return r && r->status == 200;
  })) << api.log();
  SseClient stream(port, "/v1/stream");
  ASSERT_EQ(stream.answer().status, 200) << api.log();
  const auto first = stream.next(std::chrono::seconds(10));  // joined: a ping
  ASSERT_TRUE(first && first->comment == "ping") << api.log();

  ASSERT_TRUE(cluster.run("stop"));
  const auto stalled = stream.next_event(std::chrono::seconds(15));
  ASSERT_TRUE(stalled) << api.log();
  EXPECT_EQ(stalled->event, "stalled");
  EXPECT_EQ(stalled->json()["error"]["code"], "unavailable") << stalled->data;
  EXPECT_TRUE(stalled->id.empty());

  ASSERT_TRUE(cluster.run("start"));
  const auto resumed = stream.next_event(std::chrono::seconds(30));
  ASSERT_TRUE(resumed) << api.log();
  EXPECT_EQ(resumed->event, "resumed") << resumed->data;
  const auto created = client.Post("/v1/reminders", R"({"entity_type": "e", "entity_id": "1",
      "event_type": "t", "channel": "log", "schedule_type": "one_time",
      "run_at": "2099-01-01T00:00:00Z"})",
                                   "application/json");
  ASSERT_TRUE(created && created->status == 201) << api.log();
  const auto change = stream.next_event(std::chrono::seconds(10));
  ASSERT_TRUE(change) << api.log();
  EXPECT_EQ(change->event, "reminder");
  EXPECT_FALSE(stream.ended());
}

// A worker's maintenance connection dies with a restart too: it is replaced at once, and the
// worker warns of nothing once it has recovered (it warned "maintenance failed" a turn later).
TEST_F(PostgresRestart, MaintenanceReconnectsWithoutAWarningAfterARestart) {
  OwnCluster cluster(script_);
  ASSERT_TRUE(start_migrated(cluster));
  auto& worker =
      start_worker({{"NUDGE_WORKER_LEASE_SECONDS", "5"}}, cluster.url());  // a 1.7 s turn
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return worker.log().find("worker started") != std::string::npos;
  })) << worker.log();
  std::this_thread::sleep_for(2500ms);  // the maintenance connection is open
  ASSERT_TRUE(cluster.run("restart"));
  // A turn that fell while the server was shutting down fails rightly (a loaded machine's
  // restart takes seconds); once it is back, none may.
  const std::size_t restarted = worker.log().size();
  std::this_thread::sleep_for(4s);  // two turns of maintenance
  EXPECT_TRUE(worker.running()) << worker.log();
  EXPECT_EQ(worker.log().find("maintenance failed", restarted), std::string::npos) << worker.log();
}

}  // namespace
}  // namespace nudge::test
