// An application's transaction that stopped a reminder while a worker delivered it holds the
// reminder's row until it ends. The worker does not wait for it: it goes on claiming and
// delivering, and records that delivery once the transaction ends (explore19a #1: the claim loop
// waited, 58 s without a delivery, and deliveries answered in 3 s were recorded as timeouts).

#include <atomic>
#include <thread>

#include "process/process_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

class OpenTransaction : public ProcessTest {
 protected:
  void create_webhook(const std::string& entity_id, const std::string& path,
                      const std::string& stop_flag = "") {
    sql("SELECT nudge.create_reminder(p_entity_type => 'order', p_entity_id => $1,"
        " p_event_type => 'paid', p_channel => 'webhook', p_schedule_type => 'one_time',"
        " p_run_at => now(), p_target => $2,"
        " p_stop_condition_type => CASE WHEN $3 <> '' THEN 'db_check' END,"
        " p_stop_condition_value => nullif($3, ''))",
        entity_id, receiver_.url(path), stop_flag);
  }

  WebhookReceiver receiver_;
};

TEST_F(OpenTransaction, AStopLeftOpenByTheApplicationDoesNotHoldUpTheWorker) {
  receiver_.on("/slow", [](int) {
    std::this_thread::sleep_for(700ms);
    return 200;
  });
  // One claim loop: it delivers the stopped reminders and everything else.
  start_worker({{"NUDGE_WORKER_CONCURRENCY", "1"}});
  for (int i = 0; i < 3; ++i) create_webhook("held" + std::to_string(i), "/slow", "paid:held");
  ASSERT_TRUE(wait_until(kSlow, [&] { return receiver_.requests_to("/slow").size() == 3; }))
      << all_logs();

  // The application stops them in a transaction it leaves open, while they are delivered.
  pqxx::connection app(db_.url());
  pqxx::work held(app);
  held.exec("SELECT nudge.set_flag('paid:held', true)");
  std::this_thread::sleep_for(1s);  // their deliveries end meanwhile

  constexpr int kOthers = 20;
  for (int i = 0; i < kOthers; ++i) create_webhook("other" + std::to_string(i), "/fast");
  EXPECT_TRUE(wait_until(20s, [&] { return receiver_.requests_to("/fast").size() == kOthers; }))
      << "the worker waited for the application's transaction\n"
      << all_logs();
  EXPECT_TRUE(wait_until(
      10s,
      [&] {
        return value<long>(
                   "SELECT count(*) FROM nudge.executions e JOIN nudge.reminders r"
                   " ON r.id = e.reminder_id WHERE r.entity_id LIKE 'other%'") == kOthers;
      }))
      << "recorded too, while the stopped ones wait\n"
      << all_logs();
  EXPECT_NE(all_logs().find("ended attempts wait to be recorded"), std::string::npos) << all_logs();

  held.commit();
  // The stopped reminders' deliveries are recorded as they went: delivered, once each.
  EXPECT_TRUE(wait_until(20s, [&] {
    return value<long>(
               "SELECT count(*) FROM nudge.executions e JOIN nudge.reminders r"
               " ON r.id = e.reminder_id WHERE r.entity_id LIKE 'held%'"
               " AND e.outcome = 'delivered'") == 3;
  })) << all_logs();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.delivery_attempts"), 3 + kOthers);
  EXPECT_EQ(receiver_.requests_to("/slow").size(), 3u) << "none delivered twice";
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by IS NOT NULL"), 0);
  EXPECT_NE(all_logs().find("recorded once their reminders were released"), std::string::npos)
      << all_logs();
}

// Outcomes kept for later because another transaction held what their finish needs keep their
// leases when the worker reconnects: given back, they were claimed and delivered again at once,
// as first attempts (ci206: 100 log lines written twice across a PostgreSQL restart).
TEST_F(OpenTransaction, AReconnectKeepsTheLeasesOfOutcomesWaitingToBeRecorded) {
  start_worker({{"NUDGE_WORKER_CONCURRENCY", "1"}});
  // Every finish needs this table: each is refused after its 10 ms lock wait.
  pqxx::connection app(db_.url());
  pqxx::work held(app);
  held.exec("LOCK TABLE nudge.executions IN SHARE MODE");
  constexpr int kKept = 5;
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
      "next_run_at) SELECT 'kept', g::text, 'e', 'log', 'one_time', now() "
      "FROM generate_series(1, $1) g",
      kKept);
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return delivered_keys().size() == kKept &&
           all_logs().find("ended attempts wait to be recorded") != std::string::npos;
  })) << all_logs();

  // The claim loop's session goes (this test's: other tests' workers share the cluster); the loop
  // reconnects.
  sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE datname = current_database() AND application_name ~ '^[^/]+:[0-9]+:[0-9a-f]{8}/0$'");
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return all_logs().find("reconnected to the database") != std::string::npos;
  })) << all_logs();
  std::this_thread::sleep_for(500ms);  // a lease given back would be claimed again by now
  EXPECT_EQ(delivered_keys().size(), static_cast<std::size_t>(kKept)) << all_logs();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by IS NOT NULL"), kKept);

  held.commit();
  ASSERT_TRUE(wait_until(kSlow, [&] { return executions() == kKept; })) << all_logs();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE attempts = 1"), kKept);
  EXPECT_EQ(delivered_keys().size(), static_cast<std::size_t>(kKept)) << "none delivered twice";
  EXPECT_EQ(all_logs().find("were not recorded"), std::string::npos) << all_logs();
}

}  // namespace
}  // namespace nudge::test
