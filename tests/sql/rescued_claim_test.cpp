// A claim says which fires it took over from an expired lease (a worker died or stalled holding
// them), for the workers' nudge_worker_leases_rescued_total; a retry or a lease given back is
// not a rescue. A rescued fire a breaker or a pace holds is still rescued when it goes.

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class RescuedClaim : public LifecycleTest {
 protected:
  void expire_lease(std::int64_t id) {
    sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        id);
  }
  std::int64_t create_webhook(const std::string& entity_id) {
    return create("p_entity_type => 'user', p_entity_id => '" + entity_id +
                  "', p_event_type => 'nudge', p_channel => 'webhook', p_target => '" + kHost +
                  "/hook', p_schedule_type => 'one_time', p_run_at => " + kDue)
        .second;
  }
  void everything_due() {
    sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'"
        " WHERE status = 'ACTIVE' AND leased_by IS NULL");
  }
  static constexpr const char* kHost = "http://down.example:8080";
  static bool rescued(const std::vector<Claimed>& fires, std::int64_t id) {
    for (const auto& f : fires)
      if (f.id == id) return f.rescued;
    ADD_FAILURE() << "reminder " << id << " was not claimed";
    return false;
  }
};

TEST_F(RescuedClaim, OnlyFiresTakenOverFromAnExpiredLeaseAreRescued) {
  const std::int64_t dead1 = create_one_time("u1");
  const std::int64_t dead2 = create_one_time("u2");
  const std::int64_t alive = create_one_time("u3");
  ASSERT_EQ(claim("w-dead").size(), 3u);
  expire_lease(dead1);
  expire_lease(dead2);
  const std::int64_t fresh = create_one_time("u4");

  const auto taken = claim("w2");
  ASSERT_EQ(taken.size(), 3u);  // the live lease on `alive` keeps it from w2
  EXPECT_TRUE(rescued(taken, dead1));
  EXPECT_TRUE(rescued(taken, dead2));
  EXPECT_FALSE(rescued(taken, fresh));
  EXPECT_EQ(reminder(alive)["leased_by"].as<std::string>(), "w-dead");
}

TEST_F(RescuedClaim, AFirstClaimIsNotARescue) {
  create_one_time("u1");
  const auto taken = claim("w1");
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_FALSE(taken[0].rescued);
}

TEST_F(RescuedClaim, ARetryAfterAFailedAttemptIsNotARescue) {
  const std::int64_t id = create_one_time("u1");
  const auto first = claim("w1");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(finish("w1", first, "failed", "503"), 1);
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 second' WHERE id = $1", id);

  const auto retry = claim("w1");
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(retry[0].attempt, 2);
  EXPECT_FALSE(retry[0].rescued);
}

TEST_F(RescuedClaim, ALeaseGivenBackIsNotARescue) {
  create_one_time("u1");
  ASSERT_EQ(claim("w1").size(), 1u);
  EXPECT_EQ(value<int>("SELECT nudge.release_leases($1, NULL)", "w1"), 1);

  const auto again = claim("w2");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_FALSE(again[0].rescued);
}

// explore25a #2: a SIGKILLed worker's deliveries to a host whose breaker was open were repeated
// by another worker with no "took over" warning and no count.
TEST_F(RescuedClaim, AFireTakenOverWhileItsHostsBreakerIsOpenIsRescuedWhenItGoes) {
  const std::int64_t id = create_webhook("u1");
  ASSERT_EQ(claim("w-dead").size(), 1u);
  expire_lease(id);
  sql("INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at,"
      " next_probe_at, open_seconds) VALUES ($1, 'open', 5, now(), now() + interval '60 s', 60)",
      std::string(kHost));
  EXPECT_TRUE(claim("w2").empty()) << "held for the probe";
  EXPECT_TRUE(reminder(id)["leased_by"].is_null());

  sql("UPDATE nudge.target_hosts SET next_probe_at = now() - interval '1 ms'");
  everything_due();
  const auto probe = claim("w3");
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_TRUE(probe[0].rescued);
  EXPECT_EQ(probe[0].attempt, 2) << "the lost try still counts";
  EXPECT_FALSE(reminder(id)["lease_lost"].as<bool>()) << "cleared once taken";
}

TEST_F(RescuedClaim, FiresTakenOverWhileTheirHostIsPacedAreRescuedWhenTheirTurnComes) {
  const std::int64_t a = create_webhook("u1");
  const std::int64_t b = create_webhook("u2");
  const std::int64_t fresh = create_webhook("u3");
  sql("UPDATE nudge.reminders SET next_run_at = now() + interval '1 hour' WHERE id = $1", fresh);
  ASSERT_EQ(claim("w-dead").size(), 2u);
  expire_lease(a);
  expire_lease(b);
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 second' WHERE id = $1", fresh);
  sql("INSERT INTO nudge.target_hosts (host, pace, limited_at, paced_until, next_send_at)"
      " VALUES ($1, 1, now(), now() + interval '5 minutes', now())",
      std::string(kHost));
  const auto first = claim("w2");
  ASSERT_EQ(first.size(), 1u) << "one a second";
  EXPECT_TRUE(first[0].rescued);

  // The pace's next send times passed: the others go, each rescued or not as before.
  sql("UPDATE nudge.target_hosts SET next_send_at = now(), pace = 100");
  everything_due();
  const auto rest = claim("w3");
  ASSERT_EQ(rest.size(), 2u);
  for (const auto& f : rest) EXPECT_EQ(f.rescued, f.id != fresh) << f.id;
}

}  // namespace
}  // namespace nudge::test
