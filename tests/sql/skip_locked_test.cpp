// Concurrent claims: a claim never waits for, nor takes, rows another open claim transaction
// holds; parallel workers record every occurrence exactly once.

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class SkipLockedTest : public LifecycleTest {};

std::set<std::int64_t> id_set(const pqxx::result& rows) {
  std::set<std::int64_t> ids;
  for (const auto& row : rows) ids.insert(row["id"].as<std::int64_t>());
  return ids;
}

TEST_F(SkipLockedTest, ConcurrentClaimTransactionsGetDisjointRows) {
  for (int i = 0; i < 10; ++i) create_one_time("u" + std::to_string(i));

  pqxx::connection a_conn(db_.url());
  pqxx::connection b_conn(db_.url());
  pqxx::work a(a_conn);  // BEGIN; stays open while b claims
  const std::set<std::int64_t> a_ids = id_set(exec_claim(a, "wA", 4));
  ASSERT_EQ(a_ids.size(), 4u);

  std::set<std::int64_t> b_ids;
  {
    pqxx::work b(b_conn);
    // A claim that waited for a's row locks would fail here instead of hanging the test.
    b.exec("SET LOCAL lock_timeout = '5s'");
    b_ids = id_set(exec_claim(b, "wB", 10));
    b.commit();
  }
  EXPECT_EQ(b_ids.size(), 6u);
  for (const auto id : b_ids) EXPECT_EQ(a_ids.count(id), 0u) << "row " << id << " claimed twice";
  a.commit();

  EXPECT_EQ(count("nudge.reminders WHERE leased_by = 'wA'"), 4);
  EXPECT_EQ(count("nudge.reminders WHERE leased_by = 'wB'"), 6);
  EXPECT_EQ(count("nudge.reminders WHERE attempt = 1"), 10);
}

TEST_F(SkipLockedTest, RowsOfARolledBackClaimAreClaimableAgain) {
  for (int i = 0; i < 3; ++i) create_one_time("u" + std::to_string(i));
  pqxx::connection a_conn(db_.url());
  {
    pqxx::work a(a_conn);
    ASSERT_EQ(exec_claim(a, "wA", 10).size(), 3u);
    a.abort();  // e.g. the worker's connection dropped before commit
  }
  const auto fires = claim("wB");
  EXPECT_EQ(fires.size(), 3u);
  for (const auto& f : fires) EXPECT_EQ(f.attempt, 1);
}

TEST_F(SkipLockedTest, ParallelWorkersRecordEveryOccurrenceExactlyOnce) {
  constexpr int kReminders = 300;
  constexpr int kWorkers = 4;
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
      " next_run_at) SELECT 'user', 'u' || g, 'nudge', 'log', 'one_time',"
      " now() - interval '1 second' * g FROM generate_series(1, $1) g",
      kReminders);

  std::atomic<int> handed_out{0};
  std::vector<std::string> errors(kWorkers);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      try {
        pqxx::connection c(db_.url());
        const std::string worker = "w" + std::to_string(w);
        std::vector<Claimed> done;
        int refused = 0;
        for (int round = 0; round < 1000; ++round) {
          const FinishArrays a = finish_arrays(done, "delivered", std::nullopt);
          pqxx::result r;
          try {
            pqxx::work tx(c);
            r = exec_finish_and_claim(tx, worker, a, 7);
            tx.commit();
          } catch (const pqxx::sql_error& e) {
            // A claim whose snapshot saw a row due keeps the lock it took to find it leased
            // until it commits; a finish waits 10 ms for such a row, then is refused whole,
            // and the worker records the same attempts again, as here.
            if (sqlstate_of(e) != "55P03" || ++refused > 100) throw;
            continue;
          }
          done = to_claimed(r);
          handed_out += static_cast<int>(done.size());
          if (done.empty()) break;
        }
      } catch (const std::exception& e) {
        errors[w] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ASSERT_EQ(e, "");

  EXPECT_EQ(handed_out.load(), kReminders);
  EXPECT_EQ(count("nudge.executions"), kReminders);
  EXPECT_EQ(count("nudge.reminders WHERE status = 'COMPLETED' AND fire_count = 1"), kReminders);
  EXPECT_EQ(count("nudge.executions WHERE attempts = 1"), kReminders);
}

}  // namespace
}  // namespace nudge::test
