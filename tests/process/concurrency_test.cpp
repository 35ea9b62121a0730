// Several real worker processes on one table: every due reminder fires once and is recorded once.

#include <set>

#include "process/process_fixture.hpp"

namespace nudge::test {
namespace {

using Concurrency = ProcessTest;

TEST_F(Concurrency, FourWorkersFireFiveThousandDueRemindersExactlyOnce) {
  insert_due(5000);
  // Small batches, so the four really interleave instead of one taking everything.
  for (int i = 0; i < 4; ++i) start_worker({{"NUDGE_WORKER_BATCH_SIZE", "50"}});

  ASSERT_TRUE(wait_for_executions(5000)) << all_logs();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'COMPLETED' AND "
                        "fire_count = 1 AND leased_by IS NULL"),
            5000);
  EXPECT_EQ(value<long>("SELECT count(DISTINCT reminder_id) FROM nudge.executions"), 5000);
  // More than one worker took part (the executions name their worker process).
  EXPECT_GT(value<long>("SELECT count(DISTINCT split_part(worker, ':', 2)) FROM nudge.executions"),
            1);

  for (auto& w : workers_) w->signal(SIGTERM);
  for (auto& w : workers_) EXPECT_EQ(w->wait(kSlow), 0) << w->log();
  // Delivery: one fire line per reminder, no key twice (no crash here, so no re-delivery).
  const auto keys = delivered_keys();
  EXPECT_EQ(keys.size(), 5000u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 5000u);
  EXPECT_EQ(executions(), 5000);
}

}  // namespace
}  // namespace nudge::test
