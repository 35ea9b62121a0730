// Leases: a live lease hides a row from other workers, an expired one is taken over with the
// next attempt, a lost lease's late finish changes nothing, occurrences claimed max_attempts
// times without a finish are recorded as failed; release and extend.

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class LeaseTest : public LifecycleTest {
 protected:
  void expire_lease(std::int64_t id) {
    sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        id);
  }
  // The reminder's row, for "nothing changed" comparisons (updated_at included).
  std::string snapshot(std::int64_t id) {
    return value<std::string>("SELECT row_to_json(r)::text FROM nudge.reminders r WHERE id = $1",
                              id);
  }
};

TEST_F(LeaseTest, LiveLeaseHidesTheRowFromOtherWorkers) {
  const std::int64_t id = create_one_time("u1");
  const auto first = claim("w1", 10, 30);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(claim("w2", 10, 30).empty());
  EXPECT_TRUE(claim("w1", 10, 30).empty());  // nor to its own holder a second time
  EXPECT_EQ(reminder(id)["leased_by"].as<std::string>(), "w1");
  EXPECT_EQ(reminder(id)["attempt"].as<int>(), 1);
}

TEST_F(LeaseTest, ExpiredLeaseIsTakenOverAndOnlyTheNewHolderRecordsTheFire) {
  const std::int64_t id = create_one_time("u1");
  const auto first = claim("w1");
  ASSERT_EQ(first.size(), 1u);
  expire_lease(id);

  const auto second = claim("w2");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].id, id);
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_EQ(second[0].scheduled_for, first[0].scheduled_for);
  EXPECT_EQ(reminder(id)["leased_by"].as<std::string>(), "w2");

  // w1 comes back late: nothing recorded, nothing changed.
  const std::string before = snapshot(id);
  EXPECT_EQ(finish("w1", first), 0);
  EXPECT_EQ(snapshot(id), before);
  EXPECT_EQ(count("nudge.executions"), 0);

  EXPECT_EQ(finish("w2", second), 1);
  const pqxx::result e = sql("SELECT * FROM nudge.executions");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["attempts"].as<int>(), 2);
  EXPECT_EQ(e[0]["worker"].as<std::string>(), "w2");
  EXPECT_EQ(e[0]["outcome"].as<std::string>(), "delivered");
  EXPECT_EQ(status(id), "COMPLETED");
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);

  // And even later, w1's finish still records nothing.
  EXPECT_EQ(finish("w1", first), 0);
  EXPECT_EQ(count("nudge.executions"), 1);
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);
}

// A worker that comes back after its leases ran out is told, in a WARNING it logs, which of its
// outcomes were thrown away: it logged them as its own and counted them, and nothing said why.
TEST_F(LeaseTest, ALateFinishAndClaimNamesTheAttemptsItCouldNotRecord) {
  struct Warnings : pqxx::errorhandler {
    using pqxx::errorhandler::errorhandler;
    bool operator()(const char message[]) noexcept override {
      said += message;
      return true;
    }
    std::string said;
  } warnings(conn_);
  create_one_time("kept");
  const std::int64_t lost = create_one_time("lost");
  const auto first = claim("w1");
  ASSERT_EQ(first.size(), 2u);
  expire_lease(lost);
  ASSERT_EQ(claim("w2").size(), 1u);

  finish_and_claim("w1", first, 0);
  EXPECT_NE(warnings.said.find("WARNING:  nudge: 1 of 2 ended attempts of worker w1 were not "
                               "recorded: it no longer held their leases"),
            std::string::npos)
      << warnings.said;
  EXPECT_NE(warnings.said.find("; reminders " + std::to_string(lost) + "\n"), std::string::npos)
      << warnings.said;
  EXPECT_EQ(count("nudge.executions"), 1);

  warnings.said.clear();
  finish_and_claim("w1", {}, 10);  // a claim alone says nothing
  EXPECT_EQ(warnings.said, "");
}

TEST_F(LeaseTest, LateFinishAfterTheNewHolderMovedARecurringReminderOnChangesNothing) {
  const std::int64_t id = create_recurring("u1", 3600);
  const auto first = claim("w1");
  ASSERT_EQ(first.size(), 1u);
  expire_lease(id);
  const auto second = claim("w2");
  ASSERT_EQ(second.size(), 1u);
  ASSERT_EQ(finish("w2", second), 1);

  const std::string before = snapshot(id);
  EXPECT_EQ(finish("w1", first), 0);
  EXPECT_EQ(snapshot(id), before);
  EXPECT_EQ(executions_of(id), 1);
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);
}

TEST_F(LeaseTest, FinishWithAnotherLeaseTokenRecordsNothing) {
  struct Case {
    const char* name;
    std::string worker;
    int attempt_delta;
    const char* scheduled_shift;
  };
  const Case cases[] = {
      {"other_worker", "w2", 0, "0 seconds"},
      {"older_attempt", "w1", -1, "0 seconds"},
      {"newer_attempt", "w1", +1, "0 seconds"},
      {"other_occurrence", "w1", 0, "1 microsecond"},
  };
  const std::int64_t id = create_recurring("u1", 3600);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  const std::string before = snapshot(id);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Claimed forged = fires[0];
    forged.attempt += c.attempt_delta;
    forged.scheduled_for = value<std::string>("SELECT ($1::timestamptz + $2::interval)::text",
                                              fires[0].scheduled_for, c.scheduled_shift);
    EXPECT_EQ(finish(c.worker, {forged}), 0);
    EXPECT_EQ(snapshot(id), before);
  }
  EXPECT_EQ(count("nudge.executions"), 0);
  EXPECT_EQ(finish("w1", fires), 1);
}

TEST_F(LeaseTest, FinishingTheSameFireTwiceRecordsItOnce) {
  const std::int64_t id = create_recurring("u1", 3600);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(finish("w1", fires), 1);
  const std::string after_first = snapshot(id);
  EXPECT_EQ(finish("w1", fires), 0);
  EXPECT_EQ(snapshot(id), after_first);
  EXPECT_EQ(executions_of(id), 1);
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);
}

TEST_F(LeaseTest, FinishOfUnknownIdsRecordsNothing) {
  Claimed ghost;
  ghost.id = 987654;
  ghost.scheduled_for = value<std::string>("SELECT now()::text");
  ghost.attempt = 1;
  EXPECT_EQ(finish("w1", {ghost}), 0);
  EXPECT_EQ(count("nudge.executions"), 0);
}

TEST_F(LeaseTest, OneTimeClaimedMaxAttemptsTimesWithoutFinishFails) {
  constexpr int kMaxAttempts = 3;
  const std::int64_t id = create_one_time("u1");
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    const auto fires = claim("w" + std::to_string(attempt), 10, 30, kMaxAttempts);
    ASSERT_EQ(fires.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(fires[0].attempt, attempt);
    expire_lease(id);  // the worker died
  }
  EXPECT_TRUE(claim("w4", 10, 30, kMaxAttempts).empty());

  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "FAILED");
  EXPECT_EQ(r["completed_reason"].as<std::string>(), "attempts_exhausted");
  EXPECT_EQ(r["fire_count"].as<int>(), 1);
  EXPECT_FALSE(r["finished_at"].is_null());
  EXPECT_FALSE(r["last_error"].is_null());
  EXPECT_TRUE(r["leased_by"].is_null());
  EXPECT_TRUE(r["lease_expires_at"].is_null());
  const pqxx::result e = sql("SELECT * FROM nudge.executions");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["outcome"].as<std::string>(), "failed");
  EXPECT_EQ(e[0]["attempts"].as<int>(), kMaxAttempts);
  EXPECT_FALSE(e[0]["error"].is_null());
  EXPECT_TRUE(claim("w5", 10, 30, kMaxAttempts).empty());
  EXPECT_EQ(count("nudge.executions"), 1);
}

TEST_F(LeaseTest, RecurringOccurrenceClaimedMaxAttemptsTimesIsRecordedFailedAndMovesOn) {
  constexpr int kMaxAttempts = 2;
  const std::int64_t id = create_recurring("u1", 3600);
  std::string scheduled_for;
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    const auto fires = claim("w1", 10, 30, kMaxAttempts);
    ASSERT_EQ(fires.size(), 1u);
    scheduled_for = fires[0].scheduled_for;
    expire_lease(id);
  }
  const std::int64_t other = create_one_time("u2");
  const auto fires = claim("w2", 10, 30, kMaxAttempts);
  ASSERT_EQ(fires.size(), 1u);  // the exhausted one is not handed out; others still are
  EXPECT_EQ(fires[0].id, other);

  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "ACTIVE");
  EXPECT_TRUE(r["completed_reason"].is_null());
  EXPECT_EQ(r["fire_count"].as<int>(), 1);
  EXPECT_EQ(r["attempt"].as<int>(), 0);
  EXPECT_TRUE(r["leased_by"].is_null());
  EXPECT_TRUE(r["lease_expires_at"].is_null());
  EXPECT_TRUE(value<bool>(
      "SELECT next_run_at = $2::timestamptz + interval '3600 seconds' FROM nudge.reminders"
      " WHERE id = $1",
      id, scheduled_for));
  const pqxx::result e = sql("SELECT * FROM nudge.executions WHERE reminder_id = $1", id);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["outcome"].as<std::string>(), "failed");
  EXPECT_TRUE(
      value<bool>("SELECT scheduled_for = $1::timestamptz FROM nudge.executions"
                  " WHERE reminder_id = $2",
                  scheduled_for, id));
}

TEST_F(LeaseTest, ReleaseOfListedIdsGivesThemBackAtOnce) {
  for (int i = 0; i < 3; ++i) create_one_time("u" + std::to_string(i));
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 3u);
  const std::int64_t a = fires[0].id, b = fires[1].id, kept = fires[2].id;

  EXPECT_EQ(value<int>("SELECT nudge.release_leases($1, $2::bigint[])", "w1",
                       pg_array(std::vector<std::int64_t>{a, b})),
            2);
  for (const auto id : {a, b}) {
    const pqxx::row r = reminder(id);
    EXPECT_TRUE(r["leased_by"].is_null());
    EXPECT_TRUE(r["lease_expires_at"].is_null());
    EXPECT_EQ(r["attempt"].as<int>(), 0);  // a release is not an attempt
  }
  const auto taken = claim("w2");
  ASSERT_EQ(taken.size(), 2u);
  for (const auto& f : taken) EXPECT_EQ(f.attempt, 1);
  const auto taken_ids = ids_of(taken);
  EXPECT_EQ(std::set<std::int64_t>(taken_ids.begin(), taken_ids.end()),
            (std::set<std::int64_t>{a, b}));
  EXPECT_EQ(reminder(kept)["leased_by"].as<std::string>(), "w1");
}

// What a worker keeps (outcomes still to be recorded) stays leased when it gives back the rest,
// as the worker's own statement asks at a reconnect and a stop.
TEST_F(LeaseTest, ReleaseKeepsTheLeasesItIsToldToKeep) {
  for (int i = 0; i < 3; ++i) create_one_time("u" + std::to_string(i));
  const auto mine = claim("w1", 3);
  ASSERT_EQ(mine.size(), 3u);
  EXPECT_EQ(value<int>(statements::kReleaseLeasesExcept.sql, "w1",
                       "{" + std::to_string(mine[0].id) + "}"),
            2);
  EXPECT_EQ(reminder(mine[0].id)["leased_by"].as<std::string>(), "w1");
  EXPECT_EQ(count("nudge.reminders WHERE leased_by = 'w1'"), 1);
}

TEST_F(LeaseTest, ReleaseOfNullGivesBackEveryLeaseOfThatWorkerOnly) {
  for (int i = 0; i < 4; ++i) create_one_time("u" + std::to_string(i));
  const auto mine = claim("w1", 3);
  ASSERT_EQ(mine.size(), 3u);
  const auto theirs = claim("w2", 3);
  ASSERT_EQ(theirs.size(), 1u);

  EXPECT_EQ(value<int>("SELECT nudge.release_leases($1, NULL)", "w-unknown"), 0);
  EXPECT_EQ(value<int>("SELECT nudge.release_leases($1, NULL)", "w1"), 3);
  EXPECT_EQ(count("nudge.reminders WHERE leased_by = 'w1'"), 0);
  EXPECT_EQ(reminder(theirs[0].id)["leased_by"].as<std::string>(), "w2");
  const auto retaken = claim("w3");
  EXPECT_EQ(retaken.size(), 3u);
}

TEST_F(LeaseTest, ReleaseDoesNotTouchLeasesOfOtherWorkers) {
  const std::int64_t id = create_one_time("u1");
  ASSERT_EQ(claim("w1").size(), 1u);
  EXPECT_EQ(value<int>("SELECT nudge.release_leases($1, $2::bigint[])", "w2",
                       pg_array(std::vector<std::int64_t>{id})),
            0);
  EXPECT_EQ(reminder(id)["leased_by"].as<std::string>(), "w1");
  EXPECT_TRUE(claim("w2").empty());
}

TEST_F(LeaseTest, ReleaseGivesBackTheAttemptTheClaimCounted) {
  const std::int64_t id = create_one_time("u1");
  ASSERT_EQ(claim("w1").size(), 1u);
  expire_lease(id);
  const auto second = claim("w2");
  ASSERT_EQ(second.size(), 1u);
  ASSERT_EQ(second[0].attempt, 2);
  EXPECT_EQ(value<int>("SELECT nudge.release_leases($1, NULL)", "w2"), 1);
  EXPECT_EQ(reminder(id)["attempt"].as<int>(), 1);
  const auto third = claim("w3");
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].attempt, 2);
  EXPECT_EQ(finish("w3", third), 1);
}

TEST_F(LeaseTest, ExtendPushesTheLeaseForwardOnlyForTheOwnersRows) {
  for (int i = 0; i < 3; ++i) create_one_time("u" + std::to_string(i));
  const auto mine = claim("w1", 2, 30);
  ASSERT_EQ(mine.size(), 2u);
  const auto theirs = claim("w2", 1, 30);
  ASSERT_EQ(theirs.size(), 1u);
  const std::string expiry_of_second = reminder(mine[1].id)["lease_expires_at"].c_str();
  const std::string expiry_of_theirs = reminder(theirs[0].id)["lease_expires_at"].c_str();

  EXPECT_EQ(value<int>("SELECT nudge.extend_leases($1, $2::bigint[], $3)", "w1",
                       pg_array(std::vector<std::int64_t>{mine[0].id, theirs[0].id}), 600),
            1);
  EXPECT_TRUE(
      value<bool>("SELECT lease_expires_at BETWEEN now() + interval '590 seconds'"
                  " AND now() + interval '601 seconds' FROM nudge.reminders WHERE id = $1",
                  mine[0].id));
  EXPECT_EQ(reminder(mine[1].id)["lease_expires_at"].as<std::string>(), expiry_of_second);
  EXPECT_EQ(reminder(theirs[0].id)["lease_expires_at"].as<std::string>(), expiry_of_theirs);
  EXPECT_EQ(reminder(theirs[0].id)["leased_by"].as<std::string>(), "w2");

  EXPECT_EQ(value<int>("SELECT nudge.extend_leases($1, $2::bigint[], $3)", "w3",
                       pg_array(ids_of(mine)), 600),
            0);
  // The extended lease still finishes normally.
  EXPECT_EQ(finish("w1", {mine[0]}), 1);
}

TEST_F(LeaseTest, HeartbeatKeepsALongDeliveryFromBeingTakenOver) {
  const std::int64_t id = create_one_time("u1");
  const auto fires = claim("w1", 10, 1);
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(value<int>("SELECT nudge.extend_leases($1, $2::bigint[], $3)", "w1",
                       pg_array(std::vector<std::int64_t>{id}), 600),
            1);
  // Well past the original one-second lease.
  sql("SELECT pg_sleep(1.2)");
  EXPECT_TRUE(claim("w2").empty());
  EXPECT_EQ(finish("w1", fires), 1);
}

}  // namespace
}  // namespace nudge::test
