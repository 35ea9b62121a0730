// Functions that lock several reminders lock them in id order, so that a worker's finish and a
// bulk change of the same reminders never deadlock; and a finish does not wait for rows another
// transaction holds.

#include <chrono>
#include <string>
#include <thread>

#include "nudge/database.hpp"
#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class LockOrderTest : public LifecycleTest {
 protected:
  // Whether a session runs `query_start` and waits for a row lock.
  bool waits_on_a_lock(const std::string& query_start) {
    return value<long>(
               "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
               " AND datname = current_database() AND query LIKE $1",
               query_start + "%") > 0;
  }
};

TEST_F(LockOrderTest, AFinishAndABulkPauseOfTheSameRemindersDoNotDeadlock) {
  const std::int64_t low = create_recurring("u1", 3600);
  const std::int64_t high = create_recurring("u2", 3600);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 2u);
  // The attempts ended newest first: the finish names the higher id first.
  std::vector<Claimed> done = fires;
  if (done[0].id < done[1].id) std::swap(done[0], done[1]);

  // The bulk change has locked the lower id, as its id-ordered lock takes it first.
  pqxx::connection bulk_conn(db_.url());
  pqxx::work bulk(bulk_conn);
  bulk.exec("SET LOCAL deadlock_timeout = '100ms'");
  bulk.exec_params("SELECT nudge.pause_reminder($1)", low);

  // The finish waits for it a moment, then is refused whole (0121: a worker does not wait for
  // another transaction's rows), holding nothing the bulk change needs.
  const auto finish = [&] {
    pqxx::connection c(db_.url());
    pqxx::work tx(c);
    exec_finish(tx, "w1", finish_arrays(done, "delivered", std::nullopt));
    tx.commit();
  };
  try {
    finish();
    ADD_FAILURE() << "the finish went through a row the bulk change holds";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(sqlstate_of(e), "55P03") << e.what();
  }
  EXPECT_FALSE(waits_on_a_lock("SELECT nudge.finish_attempts"));

  // The rest of the bulk change goes through, and the finish tried again after it.
  bulk.exec_params("SELECT nudge.pause_reminders(p_ids => ARRAY[$1, $2]::bigint[])", low, high);
  bulk.commit();
  finish();

  // Both happened: each fire is recorded once, and the reminders stay paused.
  EXPECT_EQ(count("nudge.executions"), 2);
  EXPECT_EQ(status(low), "PAUSED");
  EXPECT_EQ(status(high), "PAUSED");
  EXPECT_EQ(count("nudge.reminders WHERE leased_by IS NOT NULL"), 0);
}

// A flag stops its reminders in id order: in its index's order (by row version), it locked the
// newer reminder first while a cancel of the same entity held the older one and wanted the
// newer, a deadlock (explore19a #2).
TEST_F(LockOrderTest, AFlagAndACancelOfTheSameRemindersDoNotDeadlock) {
  const std::string flag =
      ", p_stop_condition_type => 'db_check', p_stop_condition_value => 'paid'";
  const std::int64_t low = create_one_time("o1", kInAnHour, flag);
  const std::int64_t high = create_one_time("o2", kInAnHour, flag);
  // A new version of the older one, after the newer one's in the index.
  sql("UPDATE nudge.reminders SET next_run_at = next_run_at + interval '1 minute' WHERE id = $1",
      low);

  pqxx::connection cancel_conn(db_.url());
  pqxx::work cancel(cancel_conn);
  cancel.exec("SET LOCAL deadlock_timeout = '100ms'");
  cancel.exec_params("SELECT nudge.cancel_reminder($1)", low);

  std::string flag_error;
  std::thread flagger([&] {
    try {
      pqxx::connection c(db_.url());
      pqxx::work tx(c);
      tx.exec("SET LOCAL deadlock_timeout = '100ms'");
      tx.exec("SELECT nudge.set_flag('paid', true)");
      tx.commit();
    } catch (const std::exception& e) {
      flag_error = e.what();
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!waits_on_a_lock("SELECT nudge.set_flag") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(waits_on_a_lock("SELECT nudge.set_flag"));

  std::string cancel_error;
  try {
    cancel.exec_params("SELECT nudge.cancel_reminder($1)", high);
    cancel.commit();
  } catch (const std::exception& e) {
    cancel_error = e.what();
  }
  flagger.join();
  EXPECT_EQ(cancel_error, "");
  EXPECT_EQ(flag_error, "");
  EXPECT_EQ(status(low), "CANCELLED");
  EXPECT_EQ(status(high), "CANCELLED");
}

}  // namespace
}  // namespace nudge::test
