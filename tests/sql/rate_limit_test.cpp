// A receiver's 429 (Too Many Requests), through the worker's own claim and finish: it uses none
// of the occurrence's attempts (up to nudge.free_rate_limited_tries()), it does not count against
// the host's circuit breaker, and it paces its URL, or the whole host when the host limits more
// than one URL: the due deliveries go out a pace apart, no sooner than its Retry-After
// (explore23a #1, explore24a #1).

#include <algorithm>
#include <set>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

const std::string kLimited = "http://limited.example:8080";
const std::string kHook = kLimited + "/hook";

Policy fast_retries() {
  Policy p;
  p.retry_base_ms = 1;
  p.retry_max_ms = 60000;
  return p;
}

class RateLimitTest : public LifecycleTest {
 protected:
  std::int64_t create_webhook(const std::string& entity_id, const std::string& extra = "",
                              const std::string& path = "/hook") {
    return create("p_entity_type => 'user', p_entity_id => '" + entity_id +
                  "', p_event_type => 'nudge', p_channel => 'webhook', p_target => '" + kLimited +
                  path + "', p_schedule_type => 'one_time', p_run_at => " + kDue + extra)
        .second;
  }
  // Finishes `done`, each answered `status` (with a Retry-After of `wait` seconds when given),
  // then claims up to 100.
  std::vector<Claimed> round(const std::vector<Claimed>& done, int status,
                             std::optional<int> wait = std::nullopt,
                             const Policy& policy = fast_retries()) {
    const bool ok = status >= 200 && status < 300;
    FinishArrays a = finish_arrays(
        done, ok ? "delivered" : "failed",
        ok ? std::nullopt : std::optional<std::string>("HTTP " + std::to_string(status)));
    a.status_codes = pg_array(std::vector<int>(done.size(), status));
    a.durations = pg_array(std::vector<int>(done.size(), 5));
    a.retry_after = pg_array(std::vector<std::optional<int>>(done.size(), wait));
    return LifecycleTest::round("w1", a, 100, policy);
  }
  // Every waiting reminder due now, and the host and its URLs free to be sent to now.
  void everything_due() {
    sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
        " WHERE status = 'ACTIVE' AND leased_by IS NULL");
    sql("UPDATE nudge.target_hosts SET next_send_at = now() - interval '1 millisecond'");
    sql("UPDATE nudge.paced_targets SET next_send_at = now() - interval '1 millisecond'");
  }
  // The pace of /hook, paced on its own.
  double pace_now() {
    return value<double>(
        "SELECT nudge.pace_at(pace, limited_at, paced_until, now())"
        "  FROM nudge.paced_targets WHERE url = $1",
        kHook);
  }
  // The pace /hook had when the last claim placed its rows (the pace grows some 6% a second
  // just after a cut: on a slow run the claim comes measurably later than the cut).
  double pace_at_claim() {
    return value<double>(
        "SELECT nudge.pace_at(pace, limited_at, paced_until, updated_at)"
        "  FROM nudge.paced_targets WHERE url = $1",
        kHook);
  }
  bool host_paced() {
    return value<bool>(
        "SELECT coalesce(bool_or(paced_until > now()), false)"
        "  FROM nudge.target_hosts WHERE host = $1",
        kLimited);
  }
  pqxx::row reminder_row(std::int64_t id) {
    return sql("SELECT status, completed_reason, attempt, rate_limited FROM nudge.reminders"
               " WHERE id = $1",
               id)
        .at(0);
  }
};

// A webhook whose host could not be reached (the worker reports 'unreachable': the request never
// left) shares the 429s' free tries, is recorded as a failed attempt, and counts for the host's
// breaker (explore31a F1).
TEST_F(RateLimitTest, AnUnreachableHostUsesNoAttemptWhileTheFreeTriesLast) {
  const std::int64_t id = create_webhook("u", ", p_max_attempts => 1");
  const int free_tries = value<int>("SELECT nudge.free_rate_limited_tries()");
  auto fires = round({}, 200);
  const auto unreachable = [&](const std::vector<Claimed>& done) {
    FinishArrays a = finish_arrays(done, "unreachable",
                                   std::optional<std::string>("Couldn't connect to server"));
    a.durations = pg_array(std::vector<int>(done.size(), 1));
    return LifecycleTest::round("w1", a, 100, fast_retries());
  };
  for (int i = 0; i < free_tries; ++i) {
    ASSERT_EQ(fires.size(), 1u) << "try " << i;
    EXPECT_EQ(fires[0].rate_limits_left, free_tries - i);
    unreachable(fires);
    ASSERT_EQ(reminder_row(id)["status"].as<std::string>(), "ACTIVE") << "try " << i;
    everything_due();
    sql("DELETE FROM nudge.target_hosts");  // a breaker would hold it: another test's matter
    fires = round({}, 200);
  }
  ASSERT_EQ(fires.size(), 1u);
  unreachable(fires);
  EXPECT_EQ(reminder_row(id)["status"].as<std::string>(), "FAILED");
  EXPECT_EQ(count("nudge.delivery_attempts WHERE reminder_id = " + std::to_string(id) +
                  " AND outcome = 'failed' AND status_code IS NULL"),
            free_tries + 1);
  EXPECT_EQ(value<int>("SELECT consecutive_failures FROM nudge.target_hosts"), 1)
      << "the host's breaker counts it";
}

TEST_F(RateLimitTest, A429UsesNoAttemptWhileTheOccurrencesFreeTriesLast) {
  const std::int64_t id = create_webhook("a", ", p_max_attempts => 1");
  auto fires = round({}, 200);
  const int free_tries = value<int>("SELECT nudge.free_rate_limited_tries()");
  for (int i = 0; i < free_tries; ++i) {
    ASSERT_EQ(fires.size(), 1u) << "try " << i;
    EXPECT_EQ(fires[0].max_attempts, 1 + i) << "a failure other than a 429 would end it";
    EXPECT_EQ(fires[0].rate_limits_left, free_tries - i);
    round(fires, 429);
    const auto r = reminder_row(id);
    ASSERT_EQ(r["status"].as<std::string>(), "ACTIVE") << "try " << i;
    EXPECT_EQ(r["rate_limited"].as<int>(), i + 1);
    everything_due();
    fires = round({}, 200);
  }
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].rate_limits_left, 0);
  round(fires, 429);
  const auto r = reminder_row(id);
  EXPECT_EQ(r["status"].as<std::string>(), "FAILED") << "a 429 past the free ones is an attempt";
  EXPECT_EQ(r["completed_reason"].as<std::string>(), "attempts_exhausted");
  EXPECT_EQ(r["rate_limited"].as<int>(), 0);
  EXPECT_EQ(count("nudge.delivery_attempts WHERE reminder_id = " + std::to_string(id) +
                  " AND outcome = 'failed' AND status_code = 429"),
            free_tries + 1);
}

TEST_F(RateLimitTest, OtherFailuresStillUseTheAttemptsBetween429s) {
  const std::int64_t id = create_webhook("a", ", p_max_attempts => 2");
  round(round({}, 200), 500);  // attempt 1 of 2
  everything_due();
  round(round({}, 200), 429);  // free
  everything_due();
  const auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].attempt, 3);
  EXPECT_EQ(fires[0].max_attempts, 3) << "attempt 3 is the second that counts";
  round(fires, 503);
  const auto r = reminder_row(id);
  EXPECT_EQ(r["status"].as<std::string>(), "FAILED");
  EXPECT_EQ(r["attempt"].as<int>(), 0);
}

TEST_F(RateLimitTest, A429PacesItsUrlInsteadOfCountingAgainstItsBreaker) {
  for (int i = 0; i < 10; ++i) create_webhook("r" + std::to_string(i));
  const auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 10u);
  round({fires[0], fires[1]}, 200);
  round(std::vector<Claimed>(fires.begin() + 2, fires.end()), 429);
  const auto host = sql("SELECT state, consecutive_failures FROM nudge.target_hosts"
                        " WHERE host = $1",
                        kLimited)
                        .at(0);
  EXPECT_EQ(host[0].as<std::string>(), "closed");
  EXPECT_EQ(host[1].as<int>(), 0);
  EXPECT_FALSE(host_paced()) << "8 429s to one URL: that URL's limit";
  const auto url = sql("SELECT host, pace, paced_until > now() + interval '1 minute'"
                       "  FROM nudge.paced_targets WHERE url = $1",
                       kHook)
                       .at(0);
  EXPECT_EQ(url[0].as<std::string>(), kLimited);
  EXPECT_DOUBLE_EQ(url[1].as<double>(), 1.0) << "what that batch accepted (0: 1)";
  EXPECT_TRUE(url[2].as<bool>());

  // The 8 come back due together: a second's worth goes (at 1 a second, 1), the others wait
  // a pace apart.
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
      " WHERE status = 'ACTIVE'");
  const long changes = count("nudge.changes");
  EXPECT_EQ(round({}, 200).size(), 1u);
  EXPECT_EQ(count("nudge.changes"), changes)
      << "placing is flow control, not a change (explore24a #5: 366,000 change rows)";
  const auto waits = sql(
      "SELECT extract(epoch FROM next_run_at - updated_at)::float8"
      "  FROM nudge.reminders WHERE status = 'ACTIVE' AND leased_by IS NULL ORDER BY next_run_at");
  ASSERT_EQ(waits.size(), 7u);
  const double pace = pace_at_claim();
  EXPECT_NEAR(pace, 1.0, 0.1);
  for (std::size_t i = 0; i < waits.size(); ++i)
    EXPECT_NEAR(waits[i][0].as<double>(), (1.0 + static_cast<double>(i)) / pace, 0.05);
  EXPECT_EQ(count("nudge.reminders WHERE status = 'ACTIVE' AND attempt = 1 AND occurrence_at IS "
                  "NOT NULL"),
            7)
      << "held, their occurrences and attempts kept";
  EXPECT_NEAR(value<double>("SELECT extract(epoch FROM next_send_at - updated_at)::float8"
                            "  FROM nudge.paced_targets"),
              1.0, 0.2);
}

TEST_F(RateLimitTest, ARetryAfterHoldsTheUrlNotItsHostsOtherUrls) {
  for (int i = 0; i < 3; ++i) create_webhook("r" + std::to_string(i));
  const auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 3u);
  round({fires[0]}, 429, 30);
  EXPECT_FALSE(host_paced()) << "one 429, to one URL";
  EXPECT_EQ(count("nudge.changes WHERE change = 'rescheduled'"), 0)
      << "waiting for a Retry-After is flow control, not a change";
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
      " WHERE status = 'ACTIVE' AND leased_by IS NULL");
  round({fires[1], fires[2]}, 200);
  create_webhook("later");
  const std::int64_t other = create_webhook("other", "", "/other");
  const auto now = round({}, 200);
  ASSERT_EQ(now.size(), 1u) << "nothing goes to the URL before its Retry-After";
  EXPECT_EQ(now[0].id, other) << "the host's other URL is not held";
  EXPECT_GE(value<double>("SELECT extract(epoch FROM next_send_at - now())::float8"
                          "  FROM nudge.paced_targets"),
            29);
  EXPECT_EQ(count("nudge.reminders WHERE status = 'ACTIVE' AND next_run_at >= now() + "
                  "interval '9 seconds'"),
            2)
      << "held (10 s at most, then placed again)";
  EXPECT_NEAR(pace_now(), 1.0, 0.05) << "the pace grows only once the Retry-After is over";
}

TEST_F(RateLimitTest, ABacklogWaits20sAtMostToBePlacedAgainAtThePaceOfThen) {
  for (int i = 0; i < 25; ++i) create_webhook("r" + std::to_string(i));
  round(round({}, 200), 429);  // paced at 1 a second
  everything_due();
  EXPECT_EQ(round({}, 200).size(), 1u);
  const auto waits =
      sql("SELECT extract(epoch FROM next_run_at - updated_at)::float8 FROM nudge.reminders"
          " WHERE leased_by IS NULL ORDER BY next_run_at");
  ASSERT_EQ(waits.size(), 24u);
  const double pace = pace_at_claim();
  EXPECT_NEAR(pace, 1.0, 0.1);
  for (std::size_t i = 0; i < waits.size(); ++i)
    EXPECT_NEAR(waits[i][0].as<double>(), std::min((1.0 + static_cast<double>(i)) / pace, 20.0),
                0.05)
        << i;
}

// Held rows share their times: by those and then by id, a host's backlog went out one tenant
// after another (explore24a #4).
TEST_F(RateLimitTest, APacedHostsDeliveriesGoInTheOrderOfTheirOccurrences) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(create_webhook("r" + std::to_string(i)));
  // Waiting for the same time, the later ids with the older occurrences.
  sql("UPDATE nudge.reminders SET occurrence_at = now() - id * interval '1 minute',"
      " next_run_at = now() - interval '1 second'");
  sql("INSERT INTO nudge.target_hosts (host, pace, limited_at, paced_until, next_send_at)"
      " VALUES ($1, 1, now(), now() + interval '5 minutes', now())",
      kLimited);
  const auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].id, ids.back()) << "the oldest occurrence first";
  const auto order =
      sql("SELECT id FROM nudge.reminders WHERE leased_by IS NULL ORDER BY next_run_at");
  ASSERT_EQ(order.size(), 3u);
  for (std::size_t i = 0; i < order.size(); ++i)
    EXPECT_EQ(order[i][0].as<std::int64_t>(), ids[2 - i]);
}

TEST_F(RateLimitTest, ThePaceIsCutOnceFor429sInOneSecondAndGrowsBackWithout) {
  for (int i = 0; i < 6; ++i) create_webhook("r" + std::to_string(i));
  const auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 6u);
  round({fires[0], fires[1], fires[2]}, 200);
  round({fires[3]}, 429);
  EXPECT_NEAR(pace_now(), 1.0, 0.05);
  round({fires[4]}, 429);
  EXPECT_NEAR(pace_now(), 1.0, 0.05) << "the same burst's 429s in another finish";
  // To 1/0.7 of it in 21.5 s, flat near that, then growing faster.
  sql("UPDATE nudge.paced_targets SET limited_at = now() - interval '21.544 seconds'");
  EXPECT_NEAR(pace_now(), 1.429, 0.01);
  sql("UPDATE nudge.paced_targets SET limited_at = now() - interval '30 seconds'");
  EXPECT_NEAR(pace_now(), 1.455, 0.01);
  sql("UPDATE nudge.paced_targets SET limited_at = now() - interval '60 seconds'");
  EXPECT_NEAR(pace_now(), 3.866, 0.01);
  round({fires[5]}, 429);
  EXPECT_NEAR(pace_now(), 0.7 * 3.866, 0.01);
  sql("UPDATE nudge.paced_targets SET limited_at = now() - interval '1 hour',"
      " paced_until = now() - interval '1 second'");
  EXPECT_TRUE(sql("SELECT nudge.pace_at(pace, limited_at, paced_until, now())"
                  "  FROM nudge.paced_targets")[0][0]
                  .is_null())
      << "past paced_until the URL is not paced";
}

TEST_F(RateLimitTest, TheRowsOfAUrlAnotherClaimIsPacingAreNeitherTakenNorHeld) {
  for (int i = 0; i < 3; ++i) create_webhook("r" + std::to_string(i));
  const std::int64_t other =
      create(
          "p_entity_type => 'user', p_entity_id => 'o', p_event_type => 'nudge', p_channel "
          "=> 'webhook', p_target => 'http://other.example/hook', p_schedule_type => "
          "'one_time', p_run_at => " +
          kDue)
          .second;
  auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 4u);
  std::vector<Claimed> limited;
  for (const auto& f : fires)
    if (f.id != other) limited.push_back(f);
  round(limited, 429);
  everything_due();
  pqxx::connection holder(db_.url());
  pqxx::work lock(holder);
  lock.exec("SELECT 1 FROM nudge.paced_targets FOR UPDATE");
  EXPECT_TRUE(round({}, 200).empty());
  EXPECT_EQ(count("nudge.reminders WHERE next_run_at <= now() AND leased_by IS NULL"), 3)
      << "left due for the next claim";
  lock.commit();
  EXPECT_FALSE(round({}, 200).empty());
}

// An operator who knows the receiver's limit was lifted ends the pacing (explore24a #6).
TEST_F(RateLimitTest, ClosingTheHostByHandEndsItsPacing) {
  for (int i = 0; i < 5; ++i) create_webhook("r" + std::to_string(i));
  round(round({}, 200), 429);
  everything_due();
  ASSERT_EQ(round({}, 200).size(), 1u);  // the others held a pace apart
  EXPECT_EQ(value<int>("SELECT (nudge.target_host_json(h)->>'paced_url_count')::int"
                       "  FROM nudge.target_hosts h"),
            1);
  sql("SELECT nudge.close_breaker($1)", kLimited);
  EXPECT_EQ(count("nudge.paced_targets"), 0);
  EXPECT_EQ(value<std::string>("SELECT nudge.target_host_json(h)->>'paced_urls'"
                               "  FROM nudge.target_hosts h"),
            "[]");
  EXPECT_EQ(round({}, 200).size(), 4u) << "what the pace held is due at once";
}

TEST_F(RateLimitTest, A429PacesWithTheBreakerOff) {
  for (int i = 0; i < 4; ++i) create_webhook("r" + std::to_string(i));
  Policy off = fast_retries();
  off.breaker_failures = 0;
  round(round({}, 200, std::nullopt, off), 429, std::nullopt, off);
  EXPECT_NEAR(pace_now(), 1.0, 0.05);
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
      " WHERE status = 'ACTIVE'");
  EXPECT_EQ(round({}, 200, std::nullopt, off).size(), 1u);
}

// Slack limits each incoming-webhook URL: one tenant's burst held the other tenants' URLs on
// the same host (explore24a #1: 540 webhooks 406 s late at the median).
TEST_F(RateLimitTest, AUrlsOwnLimitLeavesTheHostsOtherUrlsAlone) {
  std::set<std::int64_t> hot_ids;
  for (int i = 0; i < 6; ++i) hot_ids.insert(create_webhook("hot" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) create_webhook("quiet" + std::to_string(i), "", "/quiet");
  std::vector<Claimed> hot;
  std::vector<Claimed> quiet;
  for (const auto& f : round({}, 200)) (hot_ids.count(f.id) ? hot : quiet).push_back(f);
  ASSERT_EQ(hot.size(), 6u);
  ASSERT_EQ(quiet.size(), 3u);
  std::vector<Claimed> accepted = quiet;
  accepted.insert(accepted.end(), hot.begin(), hot.begin() + 2);
  round(accepted, 200);
  round(std::vector<Claimed>(hot.begin() + 2, hot.end()), 429);
  EXPECT_FALSE(host_paced());
  EXPECT_NEAR(pace_now(), 1.0, 0.05) << "it accepted none in that batch: 1 a second";
  for (int i = 0; i < 5; ++i) create_webhook("quiet-later" + std::to_string(i), "", "/quiet");
  everything_due();
  long hot_now = 0;
  long quiet_now = 0;
  for (const auto& f : round({}, 200)) ++(hot_ids.count(f.id) ? hot_now : quiet_now);
  EXPECT_EQ(hot_now, 1) << "a second's worth at 1 a second";
  EXPECT_EQ(quiet_now, 5) << "none held";
}

// A receiver limiting the whole host, with a URL per recipient: each 429 comes to a URL sent
// once, and pacing those one by one would not slow the host down.
TEST_F(RateLimitTest, 429sToSeveralUrlsSentOnceEachPaceTheWholeHost) {
  for (int i = 0; i < 10; ++i)
    create_webhook("r" + std::to_string(i), "", "/users/" + std::to_string(i));
  const auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 10u);
  round({fires[0], fires[1]}, 200);
  round(std::vector<Claimed>(fires.begin() + 2, fires.end()), 429);
  EXPECT_TRUE(host_paced());
  EXPECT_EQ(count("nudge.paced_targets"), 0);
  everything_due();
  for (int i = 10; i < 14; ++i)
    create_webhook("r" + std::to_string(i), "", "/users/" + std::to_string(i));
  EXPECT_EQ(round({}, 200).size(), 1u) << "a second's worth of the host's pace (1), in all";
}

// The same limit met one 429 at a time: a URL sent once refused 2 s after another URL was.
TEST_F(RateLimitTest, A429ToAUrlSentOnceSoonAfterAnotherUrlsPacesTheWholeHost) {
  create_webhook("a", "", "/a");
  create_webhook("b", "", "/b");
  Policy slow = fast_retries();
  slow.retry_base_ms = 60000;  // the retries wait: each round's claim takes nothing
  const auto fires = round({}, 200, std::nullopt, slow);
  ASSERT_EQ(fires.size(), 2u);
  round({fires[0]}, 429, std::nullopt, slow);
  EXPECT_FALSE(host_paced()) << "one URL so far";
  EXPECT_EQ(count("nudge.paced_targets"), 1);
  round({fires[1]}, 429, std::nullopt, slow);
  EXPECT_TRUE(host_paced());
  sql("UPDATE nudge.target_hosts SET pace = NULL, limited_at = NULL, paced_until = NULL");
  sql("UPDATE nudge.paced_targets SET refused_at = now() - interval '3 seconds'");
  everything_due();
  const auto again = round({}, 200, std::nullopt, slow);
  ASSERT_EQ(again.size(), 2u) << "each URL paced on its own, a second's worth each";
  round({again[0]}, 429, std::nullopt, slow);
  EXPECT_FALSE(host_paced()) << "the other URL's 429 was more than 2 s before";
}

// Slack-like URLs each over their own limit at once: a lone 429 beside a URL refused among
// several of its own requests is not a host-wide limit (0141).
TEST_F(RateLimitTest, A429AloneBesideAUrlOverItsOwnLimitPacesOnlyItsUrl) {
  std::set<std::int64_t> hot_ids;
  for (int i = 0; i < 3; ++i) hot_ids.insert(create_webhook("hot" + std::to_string(i)));
  create_webhook("b", "", "/b");
  Policy slow = fast_retries();
  slow.retry_base_ms = 60000;  // the retries wait: each round's claim takes nothing
  std::vector<Claimed> hot;
  std::vector<Claimed> other;
  for (const auto& f : round({}, 200, std::nullopt, slow))
    (hot_ids.count(f.id) ? hot : other).push_back(f);
  ASSERT_EQ(hot.size(), 3u);
  ASSERT_EQ(other.size(), 1u);
  round(hot, 429, std::nullopt, slow);
  round(other, 429, std::nullopt, slow);
  EXPECT_FALSE(host_paced());
  EXPECT_EQ(count("nudge.paced_targets"), 2);
  EXPECT_EQ(count("nudge.paced_targets WHERE alone"), 1) << "/b, sent once";
}

}  // namespace
}  // namespace nudge::test
