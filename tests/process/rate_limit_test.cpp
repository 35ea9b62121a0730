// A receiver that limits its rate, end to end: two real nudge-worker processes deliver a burst to
// a real receiver that takes 5 requests a second and answers 429 with Retry-After beyond. Its
// 429s use no attempts and pace its host, so every delivery arrives, exactly once, though the
// burst is many times its limit (explore23a #1: 294 of 300 failed). A receiver that limits each
// URL on its own (Slack) holds none of its other URLs (explore24a #1), and one that limits the
// whole host, with a URL per recipient, is paced whole.

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

// Slack limits each incoming-webhook URL: one tenant's burst held the other tenants' URLs on the
// same host behind it (explore24a #1: 540 webhooks 406 s late at the median).
TEST_F(RateLimit, AUrlsOwnLimitHoldsNoneOfTheHostsOtherUrls) {
  constexpr long kBurst = 30;
  constexpr long kQuiet = 10;
  Bucket bucket(5);
  receiver_.on("/hot", [&](int) { return bucket.take() ? 200 : 429; });
  receiver_.header("/hot", "Retry-After", "1");
  start_worker();
  start_worker();
  const std::string create =
      "SELECT nudge.create_reminder(p_entity_type => 'tenant', p_entity_id => $3 || g,"
      " p_event_type => 'alert', p_channel => 'webhook', p_schedule_type => 'one_time',"
      " p_run_at => now(), p_target => $1) FROM generate_series(1, $2) g";
  sql(create, receiver_.url("/hot"), kBurst, "hot");
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return value<long>("SELECT count(*) FROM nudge.paced_targets") > 0; }, 20ms))
      << all_logs();
  // Created once /hot is paced: paced by host, these went out after /hot's whole backlog.
  for (const char* path : {"/quiet/1", "/quiet/2"}) sql(create, receiver_.url(path), kQuiet, path);
  ASSERT_TRUE(wait_for_executions(kBurst + 2 * kQuiet)) << all_logs();

  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"),
            kBurst + 2 * kQuiet);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.paced_targets WHERE url LIKE '%/quiet/%'"), 0);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.target_hosts WHERE pace IS NOT NULL"), 0)
      << "the host was never paced whole";
  const auto hot = receiver_.requests_to("/hot");
  ASSERT_FALSE(hot.empty());
  for (const char* path : {"/quiet/1", "/quiet/2"}) {
    const auto quiet = receiver_.requests_to(path);
    ASSERT_EQ(static_cast<long>(quiet.size()), kQuiet) << path;
    for (const auto& q : quiet) EXPECT_LT(q.at, hot.back().at) << path << " waited for /hot";
  }
}

// A receiver that limits the whole host and is sent a URL per recipient: each 429 comes to a URL
// sent once, so the host is paced whole, and every delivery still arrives.
TEST_F(RateLimit, AHostLimitOverAUrlPerRecipientPacesTheWholeHost) {
  constexpr long kBurst = 40;
  Bucket bucket(5);
  for (long i = 1; i <= kBurst; ++i) {
    const std::string path = "/users/" + std::to_string(i);
    receiver_.on(path, [&](int) { return bucket.take() ? 200 : 429; });
    receiver_.header(path, "Retry-After", "1");
  }
  start_worker();
  start_worker();
  sql("SELECT nudge.create_reminder(p_entity_type => 'user', p_entity_id => g::text,"
      " p_event_type => 'invoice', p_channel => 'webhook', p_schedule_type => 'one_time',"
      " p_run_at => now(), p_target => $1 || g) FROM generate_series(1, $2) g",
      receiver_.url("/users/"), kBurst);
  ASSERT_TRUE(wait_for_executions(kBurst)) << all_logs();

  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE outcome = 'delivered'"),
            kBurst);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'FAILED'"), 0);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.target_hosts WHERE pace IS NOT NULL"), 1);
  const long refused =
      value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE status_code = 429");
  EXPECT_LT(refused, 2 * kBurst) << "paced, the receiver is not asked over and over";
}

}  // namespace
}  // namespace nudge::test
