// A worker's own listener ([worker] metrics_port): after real fires its /metrics counts them by
// channel and outcome, with retries, failures, rescued leases, claim batches, delivery times and
// lateness, and the database's backlog; promtool accepts it; /livez and /readyz answer; each
// worker on a host has its own port, and a port already taken stops the worker at start.

#include <httplib.h>

#include "process/process_fixture.hpp"
#include "support/prometheus_text.hpp"
#include "support/raw_http.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

class WorkerMetrics : public ProcessTest {
 protected:
  // A worker listening for metrics on a port of its own; returns that port once it answers.
  int start_listening_worker(std::map<std::string, std::string> env = {}) {
    const int port = free_tcp_port();
    env["NUDGE_WORKER_METRICS_PORT"] = std::to_string(port);
    start_worker(env);
    EXPECT_TRUE(wait_until(kSlow, [&] { return scrape(port, "/livez").status == 200; }))
        << all_logs();
    return port;
  }
  // Polls the worker's /metrics until `series` reads `want`; the last value read.
  double await_value(int port, const std::string& series, double want) {
    double seen = -1;
    wait_until(kSlow, [&] {
      seen = sample_value(scrape(port).body, series).value_or(-1);
      return seen == want;
    });
    return seen;
  }
};

// An alert on "maintenance has not succeeded for 5 minutes" needs its time: a database setting
// that made each turn fail showed only in the log (explore19a #7).
TEST_F(WorkerMetrics, MaintenanceFailuresAreCountedAndItsLastSuccessTimed) {
  const int port = start_listening_worker({{"NUDGE_WORKER_LEASE_SECONDS", "5"}});
  const std::string last = "nudge_worker_maintenance_last_success_timestamp_seconds";
  const std::string failures = "nudge_worker_maintenance_failures_total";
  double succeeded = 0;
  ASSERT_TRUE(wait_until(kSlow, [&] {
    succeeded = sample_value(scrape(port).body, last).value_or(0);
    return succeeded > 0;
  })) << all_logs();
  EXPECT_NEAR(succeeded, value<double>("SELECT extract(epoch FROM now())"), 60);
  EXPECT_EQ(sample_value(scrape(port).body, failures), 0);

  // A turn fails while the function it calls last is not there.
  sql("ALTER FUNCTION nudge.finish_abandoned RENAME TO finish_abandoned_away");
  EXPECT_TRUE(wait_until(kSlow, [&] {
    return sample_value(scrape(port).body, failures).value_or(0) >= 2;
  })) << all_logs();
  // Its time stays while turns fail.
  const double failed_at_last = sample_value(scrape(port).body, last).value_or(0);
  const double failed_before = sample_value(scrape(port).body, failures).value_or(0);
  EXPECT_TRUE(wait_until(kSlow, [&] {
    return sample_value(scrape(port).body, failures).value_or(0) > failed_before;
  })) << all_logs();
  EXPECT_EQ(sample_value(scrape(port).body, last), failed_at_last);
  EXPECT_NE(all_logs().find("maintenance failed"), std::string::npos);

  sql("ALTER FUNCTION nudge.finish_abandoned_away RENAME TO finish_abandoned");
  const double failed = sample_value(scrape(port).body, failures).value_or(0);
  EXPECT_TRUE(wait_until(kSlow, [&] {
    return sample_value(scrape(port).body, last).value_or(0) > failed_at_last;
  })) << all_logs();
  const double failed_after = sample_value(scrape(port).body, failures).value_or(0);
  EXPECT_LE(failed_after, failed + 1) << "still failing once the function is back";
}

TEST_F(WorkerMetrics, RealFiresAreCountedByChannelAndOutcome) {
  const int port = start_listening_worker();
  insert_due(300);
  ASSERT_TRUE(wait_for_executions(300)) << all_logs();

  EXPECT_EQ(
      await_value(port, R"(nudge_worker_fires_total{channel="log",outcome="delivered"})", 300),
      300);
  const std::string text = scrape(port).body;
  EXPECT_EQ(sample_value(text, R"(nudge_worker_attempts_total{channel="log",outcome="delivered"})"),
            300);
  EXPECT_EQ(sample_value(text, R"(nudge_worker_attempts_total{channel="log",outcome="failed"})"),
            0);
  EXPECT_EQ(sample_value(text, R"(nudge_worker_retries_total{channel="log"})"), 0);
  EXPECT_EQ(sample_value(text, "nudge_worker_leases_rescued_total"), 0);
  // Every fire came in some claim, and every claim was observed (empty ones too).
  EXPECT_EQ(sample_value(text, "nudge_worker_claim_batch_size_sum"), 300);
  EXPECT_GE(sample_value(text, "nudge_worker_claim_batch_size_count").value_or(0), 1);
  EXPECT_EQ(sample_value(text, R"(nudge_worker_delivery_duration_seconds_count{channel="log"})"),
            300);
  EXPECT_EQ(sample_value(text, "nudge_worker_lateness_seconds_count"), 300);
  EXPECT_EQ(sample_value(text, R"(nudge_worker_lateness_seconds_bucket{le="+Inf"})"), 300);
  EXPECT_EQ(sample_value(text, "nudge_worker_deliveries_in_flight"), 0);
  EXPECT_EQ(sample_value(text, "nudge_due_reminders"), 0);
  EXPECT_EQ(sample_value(text, "nudge_oldest_due_seconds"), 0);
  EXPECT_GT(sample_value(text, "process_resident_memory_bytes").value_or(0), 1e6);
  EXPECT_EQ(promtool_problems(text), "");
}

TEST_F(WorkerMetrics, RetriesAndFailedOccurrencesAreCounted) {
  WebhookReceiver receiver;
  receiver.on("/flaky", [](int n) { return n == 1 ? 503 : 200; });
  receiver.on("/down", [](int) { return 500; });
  for (const auto& [entity, path] : {std::pair{"flaky", "/flaky"}, std::pair{"down", "/down"}}) {
    sql("SELECT nudge.create_reminder(p_entity_type => 'c', p_entity_id => $1, p_event_type => "
        "'e', p_channel => 'webhook', p_schedule_type => 'one_time', p_run_at => now(), "
        "p_target => $2, p_max_attempts => 2)",
        std::string(entity), receiver.url(path));
  }
  const int port = start_listening_worker(
      {{"NUDGE_RETRY_BASE_DELAY_MS", "100"}, {"NUDGE_RETRY_MAX_DELAY_MS", "200"}});
  ASSERT_TRUE(wait_for_executions(2)) << all_logs();

  EXPECT_EQ(await_value(port, R"(nudge_worker_fires_total{channel="webhook",outcome="failed"})", 1),
            1);
  const std::string text = scrape(port).body;
  EXPECT_EQ(
      sample_value(text, R"(nudge_worker_fires_total{channel="webhook",outcome="delivered"})"), 1);
  EXPECT_EQ(
      sample_value(text, R"(nudge_worker_attempts_total{channel="webhook",outcome="delivered"})"),
      1);
  EXPECT_EQ(
      sample_value(text, R"(nudge_worker_attempts_total{channel="webhook",outcome="failed"})"), 3);
  EXPECT_EQ(sample_value(text, R"(nudge_worker_retries_total{channel="webhook"})"), 2);
  EXPECT_EQ(
      sample_value(text, R"(nudge_worker_delivery_duration_seconds_count{channel="webhook"})"), 4);
  EXPECT_EQ(sample_value(text, "nudge_worker_lateness_seconds_count"), 2);  // first attempts only
  EXPECT_EQ(promtool_problems(text), "");
}

TEST_F(WorkerMetrics, LeasesLeftByADeadWorkerAreCountedAsRescued) {
  insert_due(20);
  // What a worker killed after its claim leaves: its leases, expired, and one attempt used.
  sql("UPDATE nudge.reminders SET leased_by = 'dead:1:0/0', attempt = 1,"
      " lease_expires_at = now() - interval '1 second'");
  const int port = start_listening_worker();
  ASSERT_TRUE(wait_for_executions(20)) << all_logs();
  EXPECT_EQ(await_value(port, "nudge_worker_leases_rescued_total", 20), 20);
  const std::string text = scrape(port).body;
  EXPECT_EQ(sample_value(text, R"(nudge_worker_retries_total{channel="log"})"), 20);
  EXPECT_EQ(sample_value(text, "nudge_worker_lateness_seconds_count"), 0);  // no first attempts
  // And said in the log, with a count (explore18a #5: only the counter said it).
  EXPECT_NE(all_logs().find("took over deliveries whose lease had run out"), std::string::npos)
      << all_logs();
}

TEST_F(WorkerMetrics, TheDueBacklogAndItsOldestAgeComeFromTheDatabase) {
  insert_due(3);
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '10 minutes'");
  // Held by this test's transaction, the rows are skipped by the worker's claims (SKIP LOCKED)
  // but still due and unleased: the backlog a stalled fleet would show.
  pqxx::connection holder(db_.url());
  auto lock = std::make_unique<pqxx::work>(holder);
  lock->exec("SELECT id FROM nudge.reminders FOR UPDATE");
  const int port = start_listening_worker();
  const std::string text = scrape(port).body;
  EXPECT_EQ(sample_value(text, "nudge_due_reminders"), 3) << text;
  EXPECT_GE(sample_value(text, "nudge_oldest_due_seconds").value_or(0), 600);
  EXPECT_NE(text.find("# TYPE nudge_due_reminders gauge\n"), std::string::npos);

  lock->abort();
  ASSERT_TRUE(wait_for_executions(3)) << all_logs();
  EXPECT_EQ(await_value(port, "nudge_due_reminders", 0), 0);
}

// A worker whose claims all fail (here a trigger raising what a role's tiny statement_timeout
// raises) is not ready once they have failed for 10 s, and its log says which setting to look
// at; it was ready throughout while it did nothing (explore18a #4). Ready again once they pass.
TEST_F(WorkerMetrics, AWorkerWhoseClaimsKeepFailingIsNotReady) {
  sql("CREATE FUNCTION public.cancel_claims() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "RAISE EXCEPTION 'canceling statement due to statement timeout' USING ERRCODE = '57014'; "
      "END $$");
  sql("CREATE TRIGGER claims_cancelled BEFORE UPDATE OF leased_by ON nudge.reminders FOR EACH ROW "
      "WHEN (NEW.leased_by IS NOT NULL) EXECUTE FUNCTION public.cancel_claims()");
  insert_due(1);
  const int port = start_listening_worker({{"NUDGE_WORKER_CONCURRENCY", "1"}});
  Scraped ready;
  // (Waited for by what it says: ci209's asan pass once read a 503 for another check first.)
  ASSERT_TRUE(wait_until(kSlow,
                         [&] {
                           ready = scrape(port, "/readyz?verbose");
                           return ready.body.find("[-]claims failed: the claims of ") !=
                                  std::string::npos;
                         }))
      << ready.body << all_logs();
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("canceling statement due to statement timeout"), std::string::npos)
      << ready.body;
  EXPECT_NE(ready.body.find("[+]database ok"), std::string::npos) << ready.body;
  EXPECT_NE(all_logs().find("the statement_timeout of this login or its database cancelled it"),
            std::string::npos)
      << all_logs();

  sql("DROP TRIGGER claims_cancelled ON nudge.reminders");
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  EXPECT_TRUE(wait_until(kSlow, [&] { return scrape(port, "/readyz").status == 200; }))
      << scrape(port, "/readyz?verbose").body;
}

TEST_F(WorkerMetrics, LivezAndReadyzAnswerOnTheSameListener) {
  const int port = start_listening_worker();
  EXPECT_EQ(scrape(port, "/livez").body, "ok\n");
  const Scraped ready = scrape(port, "/readyz?verbose");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body,
            "[+]database ok\n[+]schema ok\n[+]grants ok\n[+]claims ok\n[+]email-relay ok\nreadyz "
            "check passed\n");

  sql("DELETE FROM nudge.migrations WHERE version = (SELECT max(version) FROM nudge.migrations)");
  const Scraped unready = scrape(port, "/readyz");
  EXPECT_EQ(unready.status, 503);
  EXPECT_NE(unready.body.find("[-]schema failed: migration "), std::string::npos) << unready.body;
  EXPECT_EQ(scrape(port, "/livez").status, 200);
}

// A server that refuses the connection (a connection limit, a database closed to connections)
// is named as such: "unreachable" sent operators to the network (explore22a F11).
TEST_F(WorkerMetrics, ReadyzSaysWhyTheDatabaseRefusedItsConnection) {
  const int port = start_listening_worker();
  ASSERT_EQ(scrape(port, "/readyz").status, 200);
  const std::string name = value<std::string>("SELECT current_database()");
  pqxx::connection admin(admin_url());  // a database cannot close itself to connections
  pqxx::nontransaction(admin).exec("ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS false");
  sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE datname = current_database() AND application_name LIKE '%/metrics'");
  Scraped ready;
  const bool refused = wait_until(kSlow, [&] {
    ready = scrape(port, "/readyz?verbose");
    return ready.status == 503;
  });
  pqxx::nontransaction(admin).exec("ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS true");
  ASSERT_TRUE(refused) << ready.body;
  EXPECT_NE(ready.body.find("[-]database failed: the database refused the connection: database "
                            "\"" +
                            name + "\" is not currently accepting connections"),
            std::string::npos)
      << ready.body;
  EXPECT_TRUE(wait_until(kSlow, [&] { return scrape(port, "/readyz").status == 200; }));
}

TEST_F(WorkerMetrics, TwoWorkersOnOneHostEachServeTheirOwnCounts) {
  const int first = start_listening_worker();
  const int second = start_listening_worker();
  ASSERT_NE(first, second);
  insert_due(400);
  ASSERT_TRUE(wait_for_executions(400)) << all_logs();
  const std::string series = R"(nudge_worker_fires_total{channel="log",outcome="delivered"})";
  double total = 0;
  EXPECT_TRUE(wait_until(kSlow, [&] {
    total = sample_value(scrape(first).body, series).value_or(0) +
            sample_value(scrape(second).body, series).value_or(0);
    return total == 400;
  }));
  EXPECT_EQ(total, 400);
}

TEST_F(WorkerMetrics, ASecondWorkerGivenAPortAlreadyTakenStopsAtStartSayingSo) {
  const int port = start_listening_worker();
  ChildProcess& second = start_worker({{"NUDGE_WORKER_METRICS_PORT", std::to_string(port)}});
  EXPECT_EQ(second.wait(kSlow), 1) << all_logs();
  EXPECT_NE(second.log().find("cannot listen for metrics"), std::string::npos) << all_logs();
  EXPECT_NE(second.log().find("\"port\":" + std::to_string(port)), std::string::npos);
  EXPECT_NE(second.log().find("Address already in use"), std::string::npos) << all_logs();
  EXPECT_EQ(scrape(port, "/livez").status, 200);  // the first one still answers alone
}

TEST_F(WorkerMetrics, AnAddressNotOfThisHostStopsTheWorkerSayingWhy) {
  struct Case {
    std::string address;
    std::string reason;
  };
  // 192.0.2.1 is TEST-NET-1, never an address of this host; .invalid never resolves.
  for (const Case& c : {Case{"192.0.2.1", "Cannot assign requested address"},
                        Case{"nonsense.invalid", "cannot resolve the address"}}) {
    SCOPED_TRACE(c.address);
    ChildProcess& worker =
        start_worker({{"NUDGE_WORKER_METRICS_ADDRESS", c.address},
                      {"NUDGE_WORKER_METRICS_PORT", std::to_string(free_tcp_port())}});
    EXPECT_EQ(worker.wait(kSlow), 1) << all_logs();
    EXPECT_NE(worker.log().find("cannot listen for metrics"), std::string::npos) << all_logs();
    EXPECT_NE(worker.log().find(c.reason), std::string::npos) << all_logs();
  }
}

TEST_F(WorkerMetrics, OtherMethodsThanGetAreNotAllowedAndSaySo) {
  const int port = start_listening_worker();
  httplib::Client client("127.0.0.1", port);
  for (const std::string path : {"/metrics", "/livez", "/readyz"}) {
    SCOPED_TRACE(path);
    const auto posted = client.Post(path, "x", "text/plain");
    ASSERT_TRUE(posted);
    EXPECT_EQ(posted->status, 405);
    EXPECT_EQ(posted->get_header_value("Allow"), "GET");
    EXPECT_EQ(posted->body, "POST is not allowed here; allowed: GET\n");
    const auto deleted = client.Delete(path);
    ASSERT_TRUE(deleted);
    EXPECT_EQ(deleted->status, 405);
    // As `curl -X POST` sends it: no body, no Content-Length.
    RawConnection raw(port);
    const auto bare =
        raw.request("POST " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n\r\n", kSlow);
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->status, 405);
    EXPECT_EQ(bare->header("Allow"), "GET");
  }
  EXPECT_EQ(scrape(port, "/metrics").status, 200);
}

// Slow clients cannot keep a probe from its answer: four connections sending a request's head a
// byte every 2 s held all of the listener's threads, /livez unanswered for 40 s and more
// (explore29a M5). Each head has 2 s to arrive in whole, without a thread.
TEST_F(WorkerMetrics, ClientsSendingTheirRequestSlowlyDoNotKeepLivezFromAnswering) {
  using Clock = std::chrono::steady_clock;
  const int port = start_listening_worker();
  const std::string head = "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<RawConnection> trickling;
  std::vector<RawConnection> silent;
  trickling.reserve(64);
  silent.reserve(16);
  const auto opened = Clock::now();
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(trickling.emplace_back(port).connected());
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(silent.emplace_back(port).connected());

  // A byte of each head every 100 ms for 1.5 s (15 of its 33), and a probe each time.
  Clock::duration slowest_probe{};
  for (std::size_t sent = 0; sent < 15; ++sent) {
    for (RawConnection& c : trickling) c.send(head.substr(sent, 1));
    const auto asked = Clock::now();
    RawConnection probe(port);
    const auto answer = probe.request(head, 5s);
    slowest_probe = std::max(slowest_probe, Clock::now() - asked);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 200);
    std::this_thread::sleep_until(asked + 100ms);
  }
  EXPECT_LT(slowest_probe, 1s);

  // Each is answered 408 and closed once its 2 s are up, the silent ones too.
  for (auto* group : {&trickling, &silent}) {
    for (RawConnection& c : *group) {
      const auto answer = c.read_response(5s);
      ASSERT_TRUE(answer);
      EXPECT_EQ(answer->status, 408);
      EXPECT_TRUE(c.closed_by_server(1s));
    }
  }
  const auto all_closed = Clock::now() - opened;
  EXPECT_GE(all_closed, 2s);
  EXPECT_LT(all_closed, 3500ms);
  EXPECT_EQ(scrape(port, "/livez").status, 200);
}

}  // namespace
}  // namespace nudge::test
