// The circuit breaker per webhook host (nudge.target_hosts), through the worker's own claim and
// finish: failures open it, an open breaker holds deliveries without using their attempts, one
// probe goes out when the open time is over, and its outcome closes the breaker or opens it
// again for twice the time, up to the cap.

#include <algorithm>
#include <set>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

// Three failures open a breaker for 60 s, doubled up to 200 s; generous attempts, fast retries.
Policy breaker_policy() {
  Policy p;
  p.max_attempts = 10;
  p.retry_base_ms = 1;
  p.retry_max_ms = 1;
  p.breaker_failures = 3;
  p.breaker_open_seconds = 60;
  p.breaker_max_open_seconds = 200;
  return p;
}

class BreakerTest : public LifecycleTest {
 protected:
  std::int64_t create_webhook(const std::string& entity_id, const std::string& target) {
    return create("p_entity_type => 'user', p_entity_id => '" + entity_id +
                  "', p_event_type => 'nudge', p_channel => 'webhook', p_target => '" + target +
                  "', p_schedule_type => 'one_time', p_run_at => " + kDue)
        .second;
  }
  // One round trip of `worker`: finishes `done`, each with `status` (a failure unless 2xx; 0 for
  // no answer at all), then claims up to 100.
  std::vector<Claimed> round(const std::string& worker, const std::vector<Claimed>& done,
                             int status, const Policy& policy = breaker_policy()) {
    return LifecycleTest::round(worker, answered(done, status), 100, policy);
  }
  // How many reminder rows one finish of `done` with `status` reads: the growth of the
  // backend's counters of rows its scans returned, through the table's indexes or not (sent to
  // the statistics only between transactions, so they hold still within one).
  long rows_read_by_finish(const std::string& worker, const std::vector<Claimed>& done,
                           int status) {
    const std::string read =
        "SELECT pg_stat_get_xact_tuples_returned('nudge.reminders'::regclass)"
        " + sum(pg_stat_get_xact_tuples_fetched(i.indexrelid))"
        "  FROM pg_index i WHERE i.indrelid = 'nudge.reminders'::regclass";
    pqxx::work tx(conn_);
    const long before = tx.exec1(read)[0].as<long>();
    exec_finish(tx, worker, answered(done, status), breaker_policy());
    const long after = tx.exec1(read)[0].as<long>();
    tx.commit();
    return after - before;
  }
  // The finish arrays of `done`, each answered with `status`.
  static FinishArrays answered(const std::vector<Claimed>& done, int status) {
    const bool ok = status >= 200 && status < 300;
    FinishArrays a = finish_arrays(
        done, ok ? "delivered" : "failed",
        ok ? std::nullopt : std::optional<std::string>("HTTP " + std::to_string(status)));
    a.status_codes = pg_array(std::vector<std::optional<int>>(
        done.size(), status == 0 ? std::nullopt : std::optional<int>(status)));
    a.durations = pg_array(std::vector<int>(done.size(), 5));
    return a;
  }
  // Makes every waiting reminder due now (a retry's backoff or a hold over).
  void everything_due() {
    sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
        " WHERE status = 'ACTIVE' AND leased_by IS NULL");
  }
  // Makes the open time of every breaker over.
  void open_time_over() {
    sql("UPDATE nudge.target_hosts SET next_probe_at = now() - interval '1 millisecond'"
        " WHERE state <> 'closed'");
  }
  std::string state_of(const std::string& host) {
    const auto r = sql("SELECT state FROM nudge.target_hosts WHERE host = $1", host);
    return r.empty() ? "none" : r[0][0].c_str();
  }
  int failures_of(const std::string& host) {
    return value<int>("SELECT consecutive_failures FROM nudge.target_hosts WHERE host = $1", host);
  }
  // "none" for no error.
  std::string last_error_of(const std::string& host) {
    return value<std::string>(
        "SELECT coalesce(last_error, 'none') FROM nudge.target_hosts WHERE host = $1", host);
  }
  int open_seconds_of(const std::string& host) {
    return value<int>("SELECT open_seconds FROM nudge.target_hosts WHERE host = $1", host);
  }
};

const std::string kDown = "http://down.example:8080";
const std::string kUp = "https://up.example:443";

TEST_F(BreakerTest, TheHostIsSchemeHostAndPortWithoutCredentialsPathOrCase) {
  EXPECT_EQ(value<std::string>("SELECT nudge.target_host('HTTP://u:p@Down.Example:8080/a?b#c')"),
            kDown);
  EXPECT_EQ(value<std::string>("SELECT nudge.target_host('https://up.example/hook')"), kUp);
  EXPECT_EQ(value<std::string>("SELECT nudge.target_host('http://[::1]/x')"), "http://[::1]:80");
  EXPECT_EQ(value<std::string>("SELECT nudge.target_host('http://10.0.0.1:9000')"),
            "http://10.0.0.1:9000");
}

TEST_F(BreakerTest, ConsecutiveFailuresOpenTheBreakerAndHoldItsDeliveriesWithoutUsingAttempts) {
  std::vector<std::int64_t> down;
  for (int i = 0; i < 3; ++i)
    down.push_back(create_webhook("d" + std::to_string(i), kDown + "/hook"));
  const std::int64_t up = create_webhook("u", kUp + "/hook");
  const auto first = round("w1", {}, 200);
  ASSERT_EQ(first.size(), 4u);
  std::vector<Claimed> to_down, to_up;
  for (const auto& c : first) (c.id == up ? to_up : to_down).push_back(c);

  EXPECT_TRUE(round("w1", to_up, 200).empty());
  round("w1", {to_down[0], to_down[1]}, 503);
  EXPECT_EQ(state_of(kDown), "closed");
  EXPECT_EQ(failures_of(kDown), 2);
  EXPECT_EQ(last_error_of(kDown), "HTTP 503") << "why, where on-call looks (explore18a #2)";
  round("w1", {to_down[2]}, 0);  // no answer at all
  EXPECT_EQ(state_of(kDown), "open");
  EXPECT_EQ(last_error_of(kDown), "HTTP 0") << "the last failure's";
  EXPECT_EQ(state_of(kUp), "none") << "a host that never failed has no row";
  EXPECT_EQ(open_seconds_of(kDown), 60);

  // The retries are due, but the breaker is open: held until its next probe, attempt kept.
  everything_due();
  EXPECT_TRUE(round("w2", {}, 200).empty());
  for (const std::int64_t id : down) {
    const pqxx::row r = reminder(id);
    EXPECT_EQ(r["attempt"].as<int>(), 1);
    EXPECT_TRUE(r["leased_by"].is_null());
    EXPECT_FALSE(r["occurrence_at"].is_null());
    EXPECT_EQ(value<bool>("SELECT r.next_run_at = h.next_probe_at FROM nudge.reminders r,"
                          " nudge.target_hosts h WHERE r.id = $1 AND h.host = $2",
                          id, kDown),
              true);
  }
  EXPECT_EQ(count("nudge.delivery_attempts"), 4)
      << "three failures and the other host's delivery: held deliveries are no attempts";
  EXPECT_TRUE(round("w2", {}, 200).empty()) << "not due again before the probe";
  // Said where on-call looks: the host's held deliveries, and the gauge (explore18a #2).
  EXPECT_EQ(value<long>("SELECT (nudge.target_host_json(h)->>'held')::bigint "
                        "FROM nudge.target_hosts h WHERE h.host = $1",
                        kDown),
            3);
  EXPECT_EQ(value<double>("SELECT value FROM nudge.gauges(100) "
                          "WHERE name = 'nudge_held_deliveries'"),
            3);
  EXPECT_EQ(value<long>("SELECT (nudge.overview()->>'held')::bigint"), 3);
  EXPECT_EQ(value<std::string>("SELECT nudge.target_host_json(h)->>'last_error' "
                               "FROM nudge.target_hosts h WHERE h.host = $1",
                               kDown),
            "HTTP 0");
  // Which host, for an alert: one series per breaker that is not closed.
  EXPECT_EQ(value<std::string>("SELECT string_agg(label_name || '=' || label_value, ',') "
                               "FROM nudge.gauges(100) WHERE name = 'nudge_breaker_open_seconds' "
                               "AND value >= 0"),
            "host=" + kDown);
}

// A receiver known to be back: closing its breaker by hand makes what it held due at once, as a
// probe's success would, and is audited (explore18a #2: on-call waited out a doubled open time).
TEST_F(BreakerTest, ClosingABreakerByHandReleasesWhatItHeld) {
  for (int i = 0; i < 3; ++i) create_webhook("d" + std::to_string(i), kDown + "/hook");
  round("w1", round("w1", {}, 200), 503);
  everything_due();
  EXPECT_TRUE(round("w1", {}, 200).empty());  // held
  ASSERT_EQ(state_of(kDown), "open");

  EXPECT_EQ(value<std::string>("SELECT state || ' ' || consecutive_failures "
                               "FROM nudge.close_breaker($1)",
                               kDown),
            "closed 0");
  EXPECT_TRUE(
      value<bool>("SELECT opened_at IS NULL AND next_probe_at IS NULL FROM nudge.target_hosts"));
  EXPECT_EQ(last_error_of(kDown), "none");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.gauges(100) "
                        "WHERE name = 'nudge_breaker_open_seconds'"),
            0);
  EXPECT_EQ(round("w2", {}, 200).size(), 3u) << "the held deliveries are due at once";
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.audit WHERE subject_type = 'target' "
                        "AND subject = $1 AND change = 'update'",
                        kDown),
            1);
  EXPECT_EQ(value<std::string>("SELECT state FROM nudge.close_breaker($1)", kDown), "closed");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.audit WHERE subject_type = 'target'"), 1)
      << "closing a closed breaker changes nothing";
  EXPECT_EQ(failure_of("SELECT nudge.close_breaker('https://never.example:443')").sqlstate,
            "NU404");
}

TEST_F(BreakerTest, OneProbeGoesOutWhenTheOpenTimeIsOverAndItsSuccessReleasesTheRest) {
  std::vector<std::int64_t> down;
  for (int i = 0; i < 3; ++i)
    down.push_back(create_webhook("d" + std::to_string(i), kDown + "/hook"));
  round("w1", round("w1", {}, 200), 503);
  everything_due();
  round("w1", {}, 200);  // holds them
  open_time_over();
  everything_due();

  const auto probe = round("w1", {}, 200);
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_EQ(probe[0].attempt, 2);
  EXPECT_TRUE(round("w2", {}, 200).empty()) << "a second worker gets no second probe";
  EXPECT_EQ(state_of(kDown), "probing");
  EXPECT_EQ(value<std::string>("SELECT probe_worker FROM nudge.target_hosts"), "w1");

  // The probe succeeds: the breaker closes and the held deliveries are due in doubling waves,
  // the first now, the next two a second later.
  EXPECT_EQ(round("w1", probe, 200).size(), 1u);
  EXPECT_NEAR(value<double>("SELECT extract(epoch FROM next_run_at - now())::float8"
                            " FROM nudge.reminders WHERE leased_by IS NULL AND status = 'ACTIVE'"),
              1, 0.1);
  EXPECT_EQ(state_of(kDown), "closed");
  EXPECT_EQ(failures_of(kDown), 0);
  EXPECT_EQ(last_error_of(kDown), "none") << "an answer clears it";
  EXPECT_TRUE(
      value<bool>("SELECT opened_at IS NULL AND next_probe_at IS NULL FROM nudge.target_hosts"));
}

// A finish reads the reminders it records and those a breaker it changed was holding, not the
// backlog: moving the held deliveries once walked the whole due index on every finish (0052),
// so a finish cost as much as the backlog was long.
TEST_F(BreakerTest, AFinishReadsOnlyTheRemindersItRecordsOrReleases) {
  // A backlog due at one time (as a bulk load is), held by another worker meanwhile.
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, target,"
      " schedule_type, next_run_at, leased_by, lease_expires_at)"
      " SELECT 'user', 'later' || g, 'nudge', 'webhook', 'https://later.example/hook',"
      " 'one_time', now() - interval '1 minute', 'w9', now() + interval '1 hour'"
      " FROM generate_series(1, 3000) g");
  sql("ANALYZE nudge.reminders");
  create_webhook("u0", kUp + "/hook");
  create_webhook("u1", kUp + "/hook");
  for (int i = 0; i < 3; ++i) create_webhook("d" + std::to_string(i), kDown + "/hook");
  const auto first = round("w1", {}, 200);
  ASSERT_EQ(first.size(), 5u);
  std::vector<Claimed> up, down;
  for (const auto& f : first)
    (std::string(reminder(f.id)["target"].c_str()).rfind(kUp, 0) == 0 ? up : down).push_back(f);
  ASSERT_EQ(up.size(), 2u);

  EXPECT_LE(rows_read_by_finish("w1", up, 200), 20) << "answers that change no breaker";
  EXPECT_LE(rows_read_by_finish("w1", down, 503), 20) << "failures that open the breaker";
  const std::string retries_due =
      "UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
      " WHERE entity_id LIKE 'd_' AND leased_by IS NULL";
  sql(retries_due);
  round("w1", {}, 200);  // holds the three
  open_time_over();
  sql(retries_due);
  const auto probe = round("w1", {}, 200);
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_LE(rows_read_by_finish("w1", probe, 200), 20) << "a probe's answer releasing two";
  EXPECT_EQ(state_of(kDown), "closed");
  EXPECT_EQ(round("w1", {}, 200).size(), 1u) << "the held deliveries' first wave is due at once";
}

TEST_F(BreakerTest, AFailedProbeOpensTheBreakerAgainForTwiceTheTimeUpToTheCap) {
  for (int i = 0; i < 3; ++i) create_webhook("d" + std::to_string(i), kDown + "/hook");
  round("w1", round("w1", {}, 200), 503);
  std::set<std::int64_t> probed;
  for (const int expected : {120, 200}) {
    open_time_over();
    everything_due();
    const auto probe = round("w1", {}, 200);
    ASSERT_EQ(probe.size(), 1u);
    probed.insert(probe[0].id);
    EXPECT_TRUE(round("w1", probe, 503).empty());
    EXPECT_EQ(state_of(kDown), "open");
    EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders r, nudge.target_hosts h"
                          " WHERE r.next_run_at = h.next_probe_at"),
              2)
        << "the others wait for the new probe time";
    EXPECT_EQ(open_seconds_of(kDown), expected);
    // Jittered, so that probes do not keep meeting a receiver down at regular times.
    const double wait = value<double>(
        "SELECT extract(epoch FROM next_probe_at - opened_at)::float8 FROM nudge.target_hosts");
    EXPECT_GE(wait, 0.8 * expected);
    EXPECT_LE(wait, 1.2 * expected);
  }
  EXPECT_EQ(probed.size(), 2u) << "each probe is the held delivery with the fewest attempts used";
}

// All at once, a receiver that limits its rate refused all but two of 296 held deliveries in every
// round, until their attempts were used up (explore23a #1): a closed breaker releases them in
// doubling waves, 1, 2, 4, ... a second apart, in the order they were made.
TEST_F(BreakerTest, AClosedBreakerReleasesWhatItHeldInDoublingWaves) {
  for (int i = 0; i < 20; ++i) create_webhook("w" + std::to_string(i), kDown + "/hook");
  round("w1", round("w1", {}, 200), 503);  // all 20 failed at once: open
  everything_due();
  EXPECT_TRUE(round("w1", {}, 200).empty()) << "held";
  open_time_over();
  everything_due();
  const auto probe = round("w1", {}, 200);
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_EQ(round("w1", probe, 200).size(), 1u) << "the first wave goes out with the close";
  const auto waves = sql(
      "SELECT extract(epoch FROM next_run_at - now())::int AS wave, count(*), min(id), max(id)"
      " FROM nudge.reminders WHERE status = 'ACTIVE' AND leased_by IS NULL GROUP BY 1 ORDER BY 1");
  std::vector<std::pair<int, long>> got;
  for (const auto& w : waves) got.emplace_back(w[0].as<int>(), w[1].as<long>());
  EXPECT_EQ(got, (std::vector<std::pair<int, long>>{{1, 2}, {2, 4}, {3, 8}, {4, 4}}));
  for (std::size_t i = 1; i < waves.size(); ++i)
    EXPECT_LT(waves[i - 1][3].as<long>(), waves[i][2].as<long>()) << "in the order they were made";
}

// Probes at exact doublings of the open time met a receiver down 30 s in every minute in its down
// phase every time (explore23a #2): the probe time is spread over 0.8 to 1.2 times the open time.
TEST_F(BreakerTest, TheProbeTimeIsSpreadOverAFifthEitherSideOfTheOpenTime) {
  std::vector<double> waits;
  for (int i = 0; i < 20; ++i) {
    const std::string host = "http://down" + std::to_string(i) + ".example";
    for (int k = 0; k < 5; ++k) create_webhook("j" + std::to_string(i * 5 + k), host + "/hook");
  }
  round("w1", round("w1", {}, 200), 503);
  for (const auto& row : sql("SELECT extract(epoch FROM next_probe_at - opened_at)::float8"
                             " FROM nudge.target_hosts WHERE state = 'open'"))
    waits.push_back(row[0].as<double>());
  ASSERT_EQ(waits.size(), 20u);
  const auto [low, high] = std::minmax_element(waits.begin(), waits.end());
  EXPECT_GE(*low, 48);
  EXPECT_LE(*high, 72);
  EXPECT_GT(*high - *low, 5) << "20 hosts opened at once do not probe at once";
}

// A receiver that says when to come back is probed then, not after the whole open time: a 503
// with Retry-After: 5 made its deliveries wait a minute (explore24a #8).
TEST_F(BreakerTest, A503sShorterRetryAfterIsTheOpenTime) {
  std::set<std::int64_t> down_ids;
  for (int i = 0; i < 3; ++i)
    down_ids.insert(create_webhook("d" + std::to_string(i), kDown + "/h"));
  for (int i = 0; i < 3; ++i) create_webhook("l" + std::to_string(i), kUp + "/hook");
  std::vector<Claimed> down;
  std::vector<Claimed> up;
  for (const auto& f : round("w1", {}, 200)) (down_ids.count(f.id) ? down : up).push_back(f);
  ASSERT_EQ(down.size(), 3u);
  FinishArrays a = answered(down, 503);
  a.retry_after = pg_array(std::vector<int>(3, 5));
  LifecycleTest::round("w1", a, 100, breaker_policy());
  EXPECT_EQ(state_of(kDown), "open");
  EXPECT_EQ(open_seconds_of(kDown), 5);
  const double wait = value<double>(
      "SELECT extract(epoch FROM next_probe_at - opened_at)::float8 FROM nudge.target_hosts"
      " WHERE host = $1",
      kDown);
  EXPECT_GE(wait, 4.0);
  EXPECT_LE(wait, 6.0);

  FinishArrays b = answered(up, 503);
  b.retry_after = pg_array(std::vector<int>(3, 600));
  LifecycleTest::round("w1", b, 100, breaker_policy());
  EXPECT_EQ(open_seconds_of(kUp), 60) << "a longer Retry-After does not lengthen it";
}

TEST_F(BreakerTest, AProbeWhoseWorkerWentQuietIsReplacedWhenItsLeaseEnds) {
  for (int i = 0; i < 3; ++i) create_webhook("d" + std::to_string(i), kDown + "/hook");
  round("w1", round("w1", {}, 200), 503);
  open_time_over();
  everything_due();
  ASSERT_EQ(round("w1", {}, 200).size(), 1u);  // w1 never comes back
  everything_due();
  EXPECT_TRUE(round("w2", {}, 200).empty()) << "the probe's lease runs";
  open_time_over();
  everything_due();
  const auto second = round("w2", {}, 200);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(value<std::string>("SELECT probe_worker FROM nudge.target_hosts"), "w2");
}

TEST_F(BreakerTest, AnAnswerThatIsNotAFailureOfTheHostClearsTheCount) {
  for (int i = 0; i < 4; ++i) create_webhook("d" + std::to_string(i), kDown + "/hook");
  const auto fires = round("w1", {}, 200);
  ASSERT_EQ(fires.size(), 4u);
  round("w1", {fires[0]}, 408);
  round("w1", {fires[1]}, 503);
  EXPECT_EQ(failures_of(kDown), 2);
  round("w1", {fires[2]}, 429);  // the host is up; it asks to be sent less (it is paced)
  EXPECT_EQ(failures_of(kDown), 0);
  round("w1", {fires[3]}, 404);  // the host is up; the request is wrong
  EXPECT_EQ(failures_of(kDown), 0);
  EXPECT_EQ(state_of(kDown), "closed");
}

TEST_F(BreakerTest, ContactAddressesShareTheirHostsBreaker) {
  sql("SELECT nudge.put_contact('user', 'c', 'webhook', $1)", kDown + "/contact");
  for (int i = 0; i < 3; ++i) create_webhook("d" + std::to_string(i), kDown + "/hook");
  const std::int64_t by_contact =
      create(
          "p_entity_type => 'user', p_entity_id => 'c', p_event_type => 'nudge',"
          " p_channel => 'webhook', p_schedule_type => 'one_time', p_run_at => " +
          kInAnHour)
          .second;
  round("w1", round("w1", {}, 200), 503);
  ASSERT_EQ(state_of(kDown), "open");
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond' WHERE id = $1",
      by_contact);
  EXPECT_TRUE(round("w1", {}, 200).empty());
  EXPECT_EQ(reminder(by_contact)["attempt"].as<int>(), 0);
}

TEST_F(BreakerTest, AWorkerWithBreakerFailuresZeroCountsNothing) {
  for (int i = 0; i < 3; ++i) create_webhook("d" + std::to_string(i), kDown + "/hook");
  Policy off = breaker_policy();
  off.breaker_failures = 0;
  round("w1", round("w1", {}, 200, off), 503, off);
  EXPECT_EQ(state_of(kDown), "none");
  EXPECT_EQ(count("nudge.target_hosts"), 0);
}

TEST_F(BreakerTest, AttemptsRecordedForWorkersThatDiedSayNothingAboutTheHost) {
  create_webhook("d0", kDown + "/hook");
  // Claimed three times by workers that never finished: the claim records it as failed.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(round("dead" + std::to_string(i), {}, 200).size(), 1u);
    sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 millisecond'");
  }
  Policy three = breaker_policy();
  three.max_attempts = 3;
  EXPECT_TRUE(round("w1", {}, 200, three).empty());
  EXPECT_EQ(value<std::string>("SELECT status FROM nudge.reminders"), "FAILED");
  EXPECT_EQ(state_of(kDown), "none");
}

TEST_F(BreakerTest, TheGaugesCountHostsByState) {
  for (int i = 0; i < 3; ++i) create_webhook("d" + std::to_string(i), kDown + "/hook");
  round("w1", round("w1", {}, 200), 503);
  EXPECT_EQ(
      value<std::string>("SELECT string_agg(label_value || '=' || value, ',' ORDER BY label_value)"
                         " FROM nudge.gauges(100) WHERE name = 'nudge_breaker_hosts'"),
      "closed=0,open=1,probing=0");
}

// An open breaker past its probe time with nothing to probe with says nothing of its host now:
// its series rose for good, and the README's "host down" alert fired for a host with nothing to
// send (explore23a #5). It comes back with the first delivery the breaker holds.
TEST_F(BreakerTest, AnOpenBreakerPastItsProbeTimeHoldingNothingHasNoOpenSecondsSeries) {
  const std::string series =
      "SELECT count(*) FROM nudge.gauges(100) WHERE name = 'nudge_breaker_open_seconds'";
  for (int i = 0; i < 3; ++i) create_webhook("d" + std::to_string(i), kDown + "/hook");
  round("w1", round("w1", {}, 200), 503);
  EXPECT_EQ(value<long>(series), 1) << "open, its probe time ahead";
  sql("SELECT nudge.cancel_reminders(p_status => 'ACTIVE')");  // nothing left to send
  open_time_over();
  EXPECT_EQ(state_of(kDown), "open");
  EXPECT_EQ(value<long>(series), 0);
  create_webhook("later", kDown + "/hook");
  EXPECT_TRUE(round("w1", {}, 200).size() <= 1u);
  EXPECT_EQ(value<long>(series), 1) << "probing with it";
}

}  // namespace
}  // namespace nudge::test
