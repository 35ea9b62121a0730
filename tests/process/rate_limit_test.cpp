// A receiver that limits its rate, end to end: two real nudge-worker processes deliver a burst to
// a real receiver that takes 5 requests a second and answers 429 with Retry-After beyond. Its
// 429s use no attempts and pace its host, so every delivery arrives, exactly once, though the
// burst is many times its limit (explore23a #1: 294 of 300 failed).

#include <algorithm>
#include <chrono>
#include <mutex>

#include "process/process_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

// A token bucket: `rate` requests a second, `rate` at once.
class Bucket {
 public:
  explicit Bucket(double rate) : rate_(rate), tokens_(rate) {}
  bool take() {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(rate_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  std::mutex mutex_;
  double rate_;
  double tokens_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

class RateLimit : public ProcessTest {
 protected:
  WebhookReceiver receiver_;
};

TEST_F(RateLimit, AReceiverThatLimitsItsRateGetsTheWholeBurstAtItsPace) {
  constexpr long kBurst = 40;
  Bucket bucket(5);
  receiver_.on("/limited", [&](int) { return bucket.take() ? 200 : 429; });
  receiver_.header("/limited", "Retry-After", "1");
  // The default 3 attempts: before 0130, each 429 used one.
  start_worker();
  start_worker();
  sql("SELECT nudge.create_reminder(p_entity_type => 'customer', p_entity_id => 'c' || g,"
      " p_event_type => 'invoice', p_channel => 'webhook', p_schedule_type => 'one_time',"
      " p_run_at => now(), p_target => $1) FROM generate_series(1, $2) g",
      receiver_.url("/limited"), kBurst);
  ASSERT_TRUE(wait_for_executions(kBurst)) << all_logs();

  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"),
            kBurst);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'COMPLETED'"), kBurst);
  // Every request the receiver saw is an attempt on record: the 40 it accepted, and its 429s,
  // which used no attempt (none failed).
  const long requests = static_cast<long>(receiver_.requests_to("/limited").size());
  const long refused =
      value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE status_code = 429");
  EXPECT_EQ(requests, kBurst + refused);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'FAILED'"), 0);
  // Paced, the receiver is not asked over and over: fewer refusals than the burst itself.
  EXPECT_LT(refused, kBurst) << requests << " requests";
  EXPECT_EQ(value<std::string>("SELECT state FROM nudge.target_hosts"), "closed")
      << "a 429 is an answer: the host's breaker never opened";
}

}  // namespace
}  // namespace nudge::test
