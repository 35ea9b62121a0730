// Wake-ups on channel nudge_due, heard by a second connection as a worker hears them: one per
// transaction that makes something due sooner, none for a claim.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

class WakeCounter final : public pqxx::notification_receiver {
 public:
  explicit WakeCounter(pqxx::connection_base& conn)
      : pqxx::notification_receiver(conn, "nudge_due") {}
  void operator()(const std::string& payload, int) override { payloads.push_back(payload); }
  std::vector<std::string> payloads;
};

class NotifyTest : public LifecycleTest {
 protected:
  void SetUp() override {
    listener_ = std::make_unique<pqxx::connection>(db_.url());
    counter_ = std::make_unique<WakeCounter>(*listener_);
  }
  void TearDown() override {
    counter_.reset();  // before its connection
    listener_.reset();
  }

  // Notifications heard since the last call: waits up to `first` for one to arrive, then
  // `settle` more for any further ones.
  int heard(milliseconds first = milliseconds(2000), milliseconds settle = milliseconds(300)) {
    listen_for(first, true);
    listen_for(settle, false);
    const int n = static_cast<int>(counter_->payloads.size());
    for (const auto& p : counter_->payloads) EXPECT_EQ(p, "");
    counter_->payloads.clear();
    return n;
  }
  // For "nothing must arrive": listens the whole time.
  int heard_none_within(milliseconds span = milliseconds(600)) {
    listen_for(span, false);
    const int n = static_cast<int>(counter_->payloads.size());
    counter_->payloads.clear();
    return n;
  }

 private:
  void listen_for(milliseconds span, bool stop_at_first) {
    const auto deadline = steady_clock::now() + span;
    for (;;) {
      if (stop_at_first && !counter_->payloads.empty()) return;
      const auto left =
          std::chrono::duration_cast<std::chrono::microseconds>(deadline - steady_clock::now());
      if (left.count() <= 0) return;
      listener_->await_notification(static_cast<long>(left.count() / 1000000),
                                    static_cast<long>(left.count() % 1000000));
    }
  }

  std::unique_ptr<pqxx::connection> listener_;
  std::unique_ptr<WakeCounter> counter_;
};

TEST_F(NotifyTest, BulkInsertOfTenThousandRowsSendsOneNotification) {
  EXPECT_EQ(heard_none_within(milliseconds(200)), 0);
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
      " next_run_at)"
      " SELECT 'user', 'u' || g, 'bulk', 'log', 'one_time', now() + interval '1 hour'"
      " FROM generate_series(1, 10000) g");
  ASSERT_EQ(count("nudge.reminders"), 10000);
  EXPECT_EQ(heard(milliseconds(3000), milliseconds(500)), 1);
}

TEST_F(NotifyTest, CreateSendsOneNotification) {
  create_one_time("u1", kInAnHour);
  EXPECT_EQ(heard(), 1);
}

TEST_F(NotifyTest, SeveralCreatesInOneTransactionSendOneNotification) {
  {
    pqxx::work tx(conn_);
    for (int i = 0; i < 5; ++i) {
      tx.exec("SELECT nudge.create_reminder(" + one_time_args("u" + std::to_string(i)) + ")");
    }
    tx.commit();
  }
  EXPECT_EQ(heard(), 1);
}

TEST_F(NotifyTest, IdempotentRepeatOfACreateSendsNone) {
  create_recurring("u1", 60);
  ASSERT_EQ(heard(), 1);
  ASSERT_FALSE(create(recurring_args("u1", 60)).first);
  EXPECT_EQ(heard_none_within(), 0);
}

TEST_F(NotifyTest, CreateOfAnAlreadyStoppedReminderSendsNone) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', true);");
  const auto [created, id] = create(recurring_args("u1", 60) + stop_on("feedback_submitted"));
  ASSERT_TRUE(created);
  ASSERT_EQ(status(id), "COMPLETED");
  EXPECT_EQ(heard_none_within(), 0);
}

TEST_F(NotifyTest, ClaimSendsNoNotification) {
  create_one_time("u1");
  create_recurring("u2", 60);
  ASSERT_EQ(heard(), 2);
  ASSERT_EQ(claim("w1").size(), 2u);
  EXPECT_EQ(heard_none_within(), 0);
}

TEST_F(NotifyTest, PauseSendsNoneAndResumeSendsOne) {
  const std::int64_t id = create_recurring("u1", 60);
  ASSERT_EQ(heard(), 1);
  sql("SELECT nudge.pause_reminder($1)", id);
  EXPECT_EQ(heard_none_within(), 0);
  sql("SELECT nudge.resume_reminder($1)", id);
  EXPECT_EQ(heard(), 1);
  sql("SELECT nudge.resume_reminder($1)", id);  // no-op: nothing became due sooner
  EXPECT_EQ(heard_none_within(), 0);
}

TEST_F(NotifyTest, ReleaseSendsOne) {
  create_one_time("u1");
  create_one_time("u2");
  ASSERT_EQ(heard(), 2);
  ASSERT_EQ(claim("w1").size(), 2u);
  ASSERT_EQ(value<int>("SELECT nudge.release_leases('w1', NULL)"), 2);
  EXPECT_EQ(heard(), 1);
}

TEST_F(NotifyTest, RecurringFinishSendsOneAndOneTimeFinishSendsNone) {
  create_recurring("u1", 60);
  ASSERT_EQ(heard(), 1);
  ASSERT_EQ(finish("w1", claim("w1")), 1);
  EXPECT_EQ(heard(), 1);  // rescheduled: workers must know its new time

  create_one_time("u2");
  ASSERT_EQ(heard(), 1);
  ASSERT_EQ(finish("w1", claim("w1")), 1);
  EXPECT_EQ(heard_none_within(), 0);
}

TEST_F(NotifyTest, ExtendSendsNone) {
  const std::int64_t id = create_one_time("u1");
  ASSERT_EQ(heard(), 1);
  ASSERT_EQ(claim("w1").size(), 1u);
  ASSERT_EQ(value<int>("SELECT nudge.extend_leases('w1', $1::bigint[], 600)",
                       pg_array(std::vector<std::int64_t>{id})),
            1);
  EXPECT_EQ(heard_none_within(), 0);
}

TEST_F(NotifyTest, MovingAReminderEarlierSendsOneAndLaterSendsNone) {
  const std::int64_t id = create_one_time("u1", kInAnHour);
  ASSERT_EQ(heard(), 1);
  sql("UPDATE nudge.reminders SET next_run_at = next_run_at + interval '1 hour' WHERE id = $1", id);
  EXPECT_EQ(heard_none_within(), 0);
  sql("UPDATE nudge.reminders SET next_run_at = now() WHERE id = $1", id);
  EXPECT_EQ(heard(), 1);
}

TEST_F(NotifyTest, RolledBackCreateSendsNone) {
  {
    pqxx::work tx(conn_);
    tx.exec("SELECT nudge.create_reminder(" + one_time_args("u1") + ")");
    tx.abort();
  }
  EXPECT_EQ(heard_none_within(), 0);
}

}  // namespace
}  // namespace nudge::test

namespace nudge::test {
namespace {

// A session that promises to send the hint itself after commit (nudge-api does) sends none from
// its transactions; every other session still does.
TEST_F(NotifyTest, SessionThatNotifiesAfterCommitSendsNoneFromItsTransactions) {
  sql("SET nudge.notify_after_commit = 'on'");
  create_one_time("u1");
  EXPECT_EQ(heard_none_within(), 0);
  sql("RESET nudge.notify_after_commit");
  create_one_time("u2");
  EXPECT_EQ(heard(), 1);
}

}  // namespace
}  // namespace nudge::test
