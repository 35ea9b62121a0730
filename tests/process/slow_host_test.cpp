// A webhook host that answers, but slowly, holds back only its own deliveries: a worker's claims
// take other hosts' due deliveries first while it is slow, and fill the rest of their slots with
// its own (explore21a #2: 5,000 webhooks due at once to a host answering 200 after 5-10 s kept
// another team's 30 webhooks back 95-153 s, in due order behind them).

#include <atomic>
#include <memory>
#include <thread>

#include "process/process_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

using namespace std::chrono_literals;

class SlowHost : public ProcessTest {
 protected:
  void create_webhooks(const std::string& team, int n, const std::string& target) {
    sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, target,"
        " schedule_type, next_run_at) SELECT $1, g::text, 'e', 'webhook', $3, 'one_time', now()"
        " FROM generate_series(1, $2) g",
        team, n, target);
    sql("NOTIFY nudge_due");
  }
};

TEST_F(SlowHost, ItsBurstDoesNotHoldBackAnotherHostsDeliveries) {
  WebhookReceiver slow_receiver;
  WebhookReceiver other_receiver;
  slow_receiver.on("/a", [](int) {
    std::this_thread::sleep_for(1500ms);
    return 200;
  });
  // How many of the slow host's requests had arrived when the other's last one did (shared: a
  // handler may outlive a failed test body).
  const auto slow_at_last = std::make_shared<std::atomic<long>>(-1);
  other_receiver.on("/b", [&slow_receiver, slow_at_last](int) {
    *slow_at_last = static_cast<long>(slow_receiver.requests_to("/a").size());
    return 200;
  });
  start_worker({{"NUDGE_WORKER_CONCURRENCY", "1"}, {"NUDGE_WORKER_DELIVERIES_IN_FLIGHT", "8"}});

  constexpr int kSlowBurst = 40;
  // With a password in its address, which no log line may show (explore29a #3: the slow host's
  // line named it whole).
  std::string slow_target = slow_receiver.url("/a");
  slow_target.replace(0, 7, "http://eve:s3cret-pw@");
  create_webhooks("a", kSlowBurst, slow_target);
  ASSERT_TRUE(wait_until(kSlow, [&] { return slow_receiver.requests_to("/a").size() >= 8; }))
      << all_logs();
  create_webhooks("b", 3, other_receiver.url("/b"));  // due after every one of the burst

  ASSERT_TRUE(wait_until(kSlow, [&] { return other_receiver.requests_to("/b").size() == 3; }))
      << all_logs();
  // In due order they would have waited for all 40 (five rounds of 8 slots, 1.5 s each).
  EXPECT_LE(*slow_at_last, 24) << all_logs();
  EXPECT_NE(all_logs().find("a webhook host is slow"), std::string::npos) << all_logs();
  EXPECT_EQ(all_logs().find("s3cret-pw"), std::string::npos) << all_logs();

  // The burst still goes out whole, once each, on its first attempts.
  ASSERT_TRUE(wait_for_executions(kSlowBurst + 3)) << all_logs();
  EXPECT_EQ(slow_receiver.requests_to("/a").size(), static_cast<std::size_t>(kSlowBurst));
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE attempts = 1"),
            kSlowBurst + 3);
}

}  // namespace
}  // namespace nudge::test
