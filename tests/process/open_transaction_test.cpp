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

}  // namespace
}  // namespace nudge::test
