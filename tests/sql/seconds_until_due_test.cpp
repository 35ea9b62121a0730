// nudge.seconds_until_due: how long a worker may sleep. NULL when nothing is scheduled at
// all, else the seconds until the earliest due unleased reminder or the earliest lease expiry.

#include <optional>
#include <string>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class SecondsUntilDueTest : public LifecycleTest {
 protected:
  // As the worker reads it (worker/lifecycle.cpp): NULL means "nothing scheduled".
  std::optional<double> seconds_until_due() {
    const pqxx::row r = sql("SELECT nudge.seconds_until_due()").at(0);
    if (r[0].is_null()) return std::nullopt;
    return r[0].as<double>();
  }
};

TEST_F(SecondsUntilDueTest, NullWhenNothingIsScheduled) {
  const std::optional<double> s = seconds_until_due();
  EXPECT_FALSE(s.has_value()) << "got " << *s
                              << " seconds on an empty table: a worker would never sleep";
}

TEST_F(SecondsUntilDueTest, NullWhenOnlyPausedOrFinishedRemindersExist) {
  sql("SELECT nudge.pause_reminder($1)", create_recurring("u1", 60));
  sql("SELECT nudge.cancel_reminder($1)", create_recurring("u2", 60));
  const std::int64_t fired = create_one_time("u3");
  ASSERT_EQ(finish("w1", claim("w1")), 1);
  ASSERT_EQ(status(fired), "COMPLETED");
  const std::optional<double> s = seconds_until_due();
  EXPECT_FALSE(s.has_value()) << "got " << *s;
}

TEST_F(SecondsUntilDueTest, SecondsUntilAFutureReminder) {
  create_one_time("u1", "now() + interval '100 seconds'");
  create_one_time("u2", "now() + interval '1 hour'");
  const std::optional<double> s = seconds_until_due();
  ASSERT_TRUE(s.has_value());
  EXPECT_GT(*s, 95.0);
  EXPECT_LE(*s, 100.0);
}

TEST_F(SecondsUntilDueTest, ZeroForADueReminder) {
  create_one_time("u1", "now() - interval '1 minute'");
  create_one_time("u2", kInAnHour);
  const std::optional<double> s = seconds_until_due();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s, 0.0);
}

TEST_F(SecondsUntilDueTest, LeaseExpiryWhenTheOnlyDueReminderIsLeased) {
  create_one_time("u1");
  create_one_time("u2", "now() + interval '1 hour'");
  ASSERT_EQ(claim("w1", 10, 45).size(), 1u);
  const std::optional<double> s = seconds_until_due();
  ASSERT_TRUE(s.has_value());
  EXPECT_GT(*s, 40.0);
  EXPECT_LE(*s, 45.0);
}

TEST_F(SecondsUntilDueTest, EarlierFutureReminderBeatsALaterLeaseExpiry) {
  create_one_time("u1");
  ASSERT_EQ(claim("w1", 10, 300).size(), 1u);
  create_one_time("u2", "now() + interval '20 seconds'");
  const std::optional<double> s = seconds_until_due();
  ASSERT_TRUE(s.has_value());
  EXPECT_GT(*s, 15.0);
  EXPECT_LE(*s, 20.0);
}

TEST_F(SecondsUntilDueTest, ZeroOnceALeaseHasExpired) {
  const std::int64_t id = create_one_time("u1");
  ASSERT_EQ(claim("w1", 10, 300).size(), 1u);
  sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
      id);
  const std::optional<double> s = seconds_until_due();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s, 0.0);
}

}  // namespace
}  // namespace nudge::test
