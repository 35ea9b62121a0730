// nudge.pause_reminder / nudge.resume_reminder / nudge.cancel_reminder: every
// transition, the no-ops, NU409 from finished statuses, NU404 for unknown ids.

#include <pqxx/pqxx>
#include <string>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class PauseResumeCancelTest : public LifecycleTest {
 protected:
  // Calls nudge.<action>_reminder(id); the status it returned.
  std::string act(const std::string& action, std::int64_t id) {
    return value<std::string>("SELECT (nudge." + action + "_reminder($1)).status", id);
  }
  std::string row_text(std::int64_t id) {
    return value<std::string>("SELECT row_to_json(r)::text FROM nudge.reminders r WHERE id = $1",
                              id);
  }
};

TEST_F(PauseResumeCancelTest, PauseMakesAnActiveReminderPaused) {
  const std::int64_t id = create_recurring("u1", 60);
  EXPECT_EQ(act("pause", id), "PAUSED");
  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "PAUSED");
  EXPECT_TRUE(r["completed_reason"].is_null());
  EXPECT_TRUE(r["finished_at"].is_null());
}

// A pause by a transaction that began before the reminder's last change is dated after that
// change: updated_at orders a reminder's states (explore32d F3: dated at the transaction's
// start, the dashboard kept the earlier ACTIVE for good).
TEST_F(PauseResumeCancelTest, APauseBegunBeforeTheLastChangeIsDatedAfterIt) {
  const std::int64_t id = create_recurring("u1", 60, kInAnHour);
  pqxx::connection other(db_.url());
  pqxx::work early(other);
  early.exec("SELECT now()");
  sql("SELECT pg_sleep(0.01)");
  sql("SELECT nudge.reschedule_reminder($1, p_interval_seconds => 120)", id);
  const std::string changed = reminder(id)["updated_at"].c_str();
  early.exec_params("SELECT nudge.pause_reminder($1)", id);
  early.commit();
  EXPECT_EQ(status(id), "PAUSED");
  EXPECT_TRUE(value<bool>("SELECT updated_at > $1::timestamptz FROM nudge.reminders WHERE id = $2",
                          changed, id));
}

TEST_F(PauseResumeCancelTest, PausingAPausedReminderChangesNothing) {
  const std::int64_t id = create_recurring("u1", 60);
  act("pause", id);
  const std::string before = row_text(id);
  EXPECT_EQ(act("pause", id), "PAUSED");
  EXPECT_EQ(row_text(id), before);
}

TEST_F(PauseResumeCancelTest, ResumeMakesAPausedReminderActive) {
  const std::int64_t id = create_recurring("u1", 60, kInAnHour);
  const std::string next_run_at = reminder(id)["next_run_at"].c_str();
  act("pause", id);
  EXPECT_EQ(act("resume", id), "ACTIVE");
  EXPECT_EQ(status(id), "ACTIVE");
  EXPECT_EQ(reminder(id)["next_run_at"].as<std::string>(), next_run_at);
}

TEST_F(PauseResumeCancelTest, ResumingAnActiveReminderChangesNothing) {
  const std::int64_t id = create_recurring("u1", 60);
  const std::string before = row_text(id);
  EXPECT_EQ(act("resume", id), "ACTIVE");
  EXPECT_EQ(row_text(id), before);
}

TEST_F(PauseResumeCancelTest, CancelEndsAnActiveReminder) {
  const std::int64_t id = create_recurring("u1", 60);
  EXPECT_EQ(act("cancel", id), "CANCELLED");
  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "CANCELLED");
  EXPECT_EQ(r["completed_reason"].as<std::string>(), "cancelled");
  EXPECT_FALSE(r["finished_at"].is_null());
  EXPECT_TRUE(claim("w1").empty());
}

TEST_F(PauseResumeCancelTest, CancelEndsAPausedReminder) {
  const std::int64_t id = create_recurring("u1", 60);
  act("pause", id);
  EXPECT_EQ(act("cancel", id), "CANCELLED");
  EXPECT_EQ(reason(id), "cancelled");
  EXPECT_FALSE(reminder(id)["finished_at"].is_null());
}

TEST_F(PauseResumeCancelTest, CancellingTwiceChangesNothing) {
  const std::int64_t id = create_recurring("u1", 60);
  act("cancel", id);
  const std::string before = row_text(id);
  EXPECT_EQ(act("cancel", id), "CANCELLED");
  EXPECT_EQ(row_text(id), before);
}

TEST_F(PauseResumeCancelTest, TransitionsFromFinishedStatusesAreRefused) {
  // How to bring a reminder into each finished status, and which calls must then be refused.
  struct Case {
    const char* status;
    const char* action;
    const char* sqlstate;  // "" for an allowed no-op
  };
  const Case cases[] = {
      {"COMPLETED", "pause", "NU409"},  {"COMPLETED", "resume", "NU409"},
      {"COMPLETED", "cancel", "NU409"}, {"FAILED", "pause", "NU409"},
      {"FAILED", "resume", "NU409"},    {"FAILED", "cancel", "NU409"},
      {"CANCELLED", "pause", "NU409"},  {"CANCELLED", "resume", "NU409"},
      {"CANCELLED", "cancel", ""},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.status) + " " + c.action);
    const std::int64_t id = create_one_time("u" + std::to_string(n++), kDue, kOneAttempt);
    const std::string finished = c.status;
    if (finished == "CANCELLED") {
      act("cancel", id);
    } else {
      const auto fires = claim("w1");
      ASSERT_EQ(fires.size(), 1u);
      ASSERT_EQ(finish("w1", fires, finished == "FAILED" ? "failed" : "delivered"), 1);
    }
    ASSERT_EQ(status(id), c.status);
    const std::string before = row_text(id);

    const SqlFailure f = failure_of("SELECT nudge." + std::string(c.action) + "_reminder($1)", id);
    EXPECT_EQ(f.sqlstate, c.sqlstate) << f.message;
    if (*c.sqlstate != '\0') {
      EXPECT_NE(f.message.find(c.status), std::string::npos) << f.message;
    }
    EXPECT_EQ(row_text(id), before);
  }
}

TEST_F(PauseResumeCancelTest, UnknownIdIsNotFound) {
  for (const std::string action : {"pause", "resume", "cancel"}) {
    SCOPED_TRACE(action);
    const SqlFailure f = failure_of("SELECT nudge." + action + "_reminder($1)", 424242);
    EXPECT_EQ(f.sqlstate, "NU404") << f.message;
    EXPECT_NE(f.message.find("424242"), std::string::npos) << f.message;
  }
}

TEST_F(PauseResumeCancelTest, PausedRemindersAreNeverClaimed) {
  const std::int64_t one_time = create_one_time("u1");
  const std::int64_t recurring = create_recurring("u2", 60);
  act("pause", one_time);
  act("pause", recurring);
  EXPECT_TRUE(claim("w1").empty());
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 day'");
  EXPECT_TRUE(claim("w1").empty());
  EXPECT_EQ(count("nudge.reminders WHERE status = 'PAUSED'"), 2);
  EXPECT_EQ(count("nudge.executions"), 0);
}

TEST_F(PauseResumeCancelTest, ResumeAfterTheDueTimePassedIsClaimableAtOnce) {
  const std::int64_t id = create_recurring("u1", 60, kInAnHour);
  act("pause", id);
  // While paused, its occurrence (and several more) went by.
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '5 minutes 30 seconds'"
      " WHERE id = $1",
      id);
  EXPECT_TRUE(claim("w1").empty());
  act("resume", id);

  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);  // fires once, at once
  EXPECT_EQ(fires[0].id, id);
  EXPECT_EQ(finish("w1", fires), 1);
  EXPECT_TRUE(
      value<bool>("SELECT next_run_at > now() AND next_run_at <= now() + interval '60 seconds'"
                  " FROM nudge.reminders WHERE id = $1",
                  id));
  EXPECT_TRUE(claim("w1").empty());
}

TEST_F(PauseResumeCancelTest, PauseAndResumeOfALeasedReminderKeepTheLease) {
  const std::int64_t id = create_recurring("u1", 3600);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  act("pause", id);
  act("resume", id);
  EXPECT_EQ(reminder(id)["leased_by"].as<std::string>(), "w1");
  EXPECT_TRUE(claim("w2").empty());
  EXPECT_EQ(finish("w1", fires), 1);
  EXPECT_EQ(status(id), "ACTIVE");
}

}  // namespace
}  // namespace nudge::test
