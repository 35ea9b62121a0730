// A receiver's 429 (Too Many Requests), through the worker's own claim and finish: it uses none
// of the occurrence's attempts (up to nudge.free_rate_limited_tries()), it does not count against
// the host's circuit breaker, and it paces the host: its due deliveries go out a pace apart, no
// sooner than its Retry-After (explore23a #1).

#include <algorithm>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

const std::string kLimited = "http://limited.example:8080";

Policy fast_retries() {
  Policy p;
  p.retry_base_ms = 1;
  p.retry_max_ms = 60000;
  return p;
}

class RateLimitTest : public LifecycleTest {
 protected:
  std::int64_t create_webhook(const std::string& entity_id, const std::string& extra = "") {
    return create("p_entity_type => 'user', p_entity_id => '" + entity_id +
                  "', p_event_type => 'nudge', p_channel => 'webhook', p_target => '" + kLimited +
                  "/hook', p_schedule_type => 'one_time', p_run_at => " + kDue + extra)
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
  // Every waiting reminder due now, and the host free to be sent to now.
  void everything_due() {
    sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
        " WHERE status = 'ACTIVE' AND leased_by IS NULL");
    sql("UPDATE nudge.target_hosts SET next_send_at = now() - interval '1 millisecond'");
  }
  double pace_now() {
    return value<double>(
        "SELECT nudge.host_pace(h, now()) FROM nudge.target_hosts h WHERE host = $1", kLimited);
  }
  pqxx::row reminder_row(std::int64_t id) {
    return sql("SELECT status, completed_reason, attempt, rate_limited FROM nudge.reminders"
               " WHERE id = $1",
               id)
        .at(0);
  }
};

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

TEST_F(RateLimitTest, A429PacesItsHostInsteadOfCountingAgainstItsBreaker) {
  for (int i = 0; i < 10; ++i) create_webhook("r" + std::to_string(i));
  const auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 10u);
  round({fires[0], fires[1]}, 200);
  round(std::vector<Claimed>(fires.begin() + 2, fires.end()), 429);
  const auto host = sql("SELECT state, consecutive_failures, pace, paced_until > now() + "
                        "interval '1 minute' FROM nudge.target_hosts WHERE host = $1",
                        kLimited)
                        .at(0);
  EXPECT_EQ(host[0].as<std::string>(), "closed");
  EXPECT_EQ(host[1].as<int>(), 0);
  EXPECT_DOUBLE_EQ(host[2].as<double>(), 1.0) << "half of twice what that batch accepted (0: 1)";
  EXPECT_TRUE(host[3].as<bool>());

  // The 8 come back due together: a second's worth goes (at 1 a second, 1), the others wait
  // a pace apart.
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
      " WHERE status = 'ACTIVE'");
  const long changes = count("nudge.changes");
  EXPECT_EQ(round({}, 200).size(), 1u);
  EXPECT_EQ(count("nudge.changes"), changes)
      << "placing is flow control, not a change (explore24a #5: 366,000 change rows)";
  const auto waits = sql(
      "SELECT extract(epoch FROM next_run_at - now())::float8"
      "  FROM nudge.reminders WHERE status = 'ACTIVE' AND leased_by IS NULL ORDER BY next_run_at");
  ASSERT_EQ(waits.size(), 7u);
  for (std::size_t i = 0; i < waits.size(); ++i)
    EXPECT_NEAR(waits[i][0].as<double>(), 1.0 + static_cast<double>(i), 0.2);
  EXPECT_EQ(count("nudge.reminders WHERE status = 'ACTIVE' AND attempt = 1 AND occurrence_at IS "
                  "NOT NULL"),
            7)
      << "held, their occurrences and attempts kept";
  EXPECT_NEAR(value<double>("SELECT extract(epoch FROM next_send_at - now())::float8"
                            "  FROM nudge.target_hosts"),
              1.0, 0.2);
}

TEST_F(RateLimitTest, ARetryAfterHoldsTheWholeHost) {
  for (int i = 0; i < 3; ++i) create_webhook("r" + std::to_string(i));
  const auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 3u);
  round({fires[0]}, 429, 30);
  EXPECT_EQ(count("nudge.changes WHERE change = 'rescheduled'"), 0)
      << "waiting for a Retry-After is flow control, not a change";
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
      " WHERE status = 'ACTIVE' AND leased_by IS NULL");
  round({fires[1], fires[2]}, 200);
  create_webhook("later");
  EXPECT_TRUE(round({}, 200).empty()) << "nothing goes to the host before its Retry-After";
  EXPECT_GE(value<double>("SELECT extract(epoch FROM next_send_at - now())::float8"
                          "  FROM nudge.target_hosts"),
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
      sql("SELECT extract(epoch FROM next_run_at - now())::float8 FROM nudge.reminders"
          " WHERE leased_by IS NULL ORDER BY next_run_at");
  ASSERT_EQ(waits.size(), 24u);
  for (std::size_t i = 0; i < waits.size(); ++i)
    EXPECT_NEAR(waits[i][0].as<double>(), std::min(1.0 + static_cast<double>(i), 20.0), 0.2) << i;
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

TEST_F(RateLimitTest, ThePaceHalvesOnce429sInOneSecondAndDoublesEvery20sWithout) {
  for (int i = 0; i < 6; ++i) create_webhook("r" + std::to_string(i));
  const auto fires = round({}, 200);
  ASSERT_EQ(fires.size(), 6u);
  round({fires[0], fires[1], fires[2]}, 200);
  round({fires[3]}, 429);
  EXPECT_NEAR(pace_now(), 1.0, 0.05);
  round({fires[4]}, 429);
  EXPECT_NEAR(pace_now(), 1.0, 0.05) << "the same burst's 429s in another finish";
  sql("UPDATE nudge.target_hosts SET limited_at = now() - interval '40 seconds'");
  EXPECT_NEAR(pace_now(), 4.0, 0.05);
  round({fires[5]}, 429);
  EXPECT_NEAR(pace_now(), 2.0, 0.05);
  sql("UPDATE nudge.target_hosts SET limited_at = now() - interval '1 hour',"
      " paced_until = now() - interval '1 second'");
  EXPECT_TRUE(sql("SELECT nudge.host_pace(h, now()) FROM nudge.target_hosts h")[0][0].is_null())
      << "past paced_until the host is not paced";
}

TEST_F(RateLimitTest, TheRowsOfAHostAnotherClaimIsPacingAreNeitherTakenNorHeld) {
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
  lock.exec("SELECT 1 FROM nudge.target_hosts FOR UPDATE");
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
  sql("SELECT nudge.close_breaker($1)", kLimited);
  EXPECT_TRUE(sql("SELECT pace FROM nudge.target_hosts")[0][0].is_null());
  EXPECT_TRUE(value<std::string>("SELECT nudge.target_host_json(h)->>'pace' IS NULL"
                                 "  FROM nudge.target_hosts h") == "t");
  EXPECT_EQ(round({}, 200).size(), 4u) << "what the pace held is due at once";
}

TEST_F(RateLimitTest, AHostIsPacedWithItsBreakerOff) {
  for (int i = 0; i < 4; ++i) create_webhook("r" + std::to_string(i));
  Policy off = fast_retries();
  off.breaker_failures = 0;
  round(round({}, 200, std::nullopt, off), 429, std::nullopt, off);
  EXPECT_NEAR(pace_now(), 1.0, 0.05);
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
      " WHERE status = 'ACTIVE'");
  EXPECT_EQ(round({}, 200, std::nullopt, off).size(), 1u);
}

}  // namespace
}  // namespace nudge::test
