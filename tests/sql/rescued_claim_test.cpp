// A claim says which fires it took over from an expired lease (a worker died or stalled holding
// them), for the workers' nudge_worker_leases_rescued_total; a retry or a lease given back is
// not a rescue.

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class RescuedClaim : public LifecycleTest {
 protected:
  void expire_lease(std::int64_t id) {
    sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        id);
  }
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

}  // namespace
}  // namespace nudge::test
