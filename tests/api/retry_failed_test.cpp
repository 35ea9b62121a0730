// A reminder whose attempts ran out while its receiver was down is retried over REST once the
// receiver is back: a real nudge-worker delivers it as a new occurrence (its own idempotency
// key), the failed one stays in the history; the bulk route retries what failed; what cannot
// be retried is a 409 that changes nothing.

#include "api/api_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

class RetryFailed : public ApiTest {
 protected:
  ~RetryFailed() override {
    if (worker_ && !HasFailure()) worker_->remove_logs();
  }
  void start_worker() {
    worker_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{program("nudge-worker")},
        std::map<std::string, std::string>{{"NUDGE_DATABASE_URL", db_.url()},
                                           {"NUDGE_WORKER_IDLE_CAP_SECONDS", "300"},
                                           {kAllowPrivate, kLoopbackNetworks}},
        log_.string() + ".worker");
  }
  // A webhook reminder due now with one attempt, for entity `id`; its path.
  std::string create_webhook(const std::string& id, const std::string& path) {
    const auto r =
        post("/v1/reminders",
             R"({"entity_type":"user","entity_id":")" + id +
                 R"(","event_type":"e","channel":"webhook","run_at":"2020-01-01T00:00:00Z",)"
                 R"("schedule_type":"one_time","max_attempts":1,)"
                 R"("target":")" +
                 receiver_.url(path) + R"("})");
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return "/v1/reminders/" + std::to_string(r.body.value("id", 0L));
  }
  bool becomes(const std::string& reminder, const std::string& status) {
    return wait_until(60s, [&] { return get(reminder).body["status"] == status; });
  }

  WebhookReceiver receiver_;
  std::unique_ptr<ChildProcess> worker_;
};

TEST_F(RetryFailed, AFailedReminderRetriedOnceItsReceiverIsBackIsDeliveredAsANewOccurrence) {
  receiver_.on("/down", [](int n) { return n == 1 ? 503 : 200; });
  const std::string r = create_webhook("u1", "/down");
  start_worker();
  ASSERT_TRUE(becomes(r, "FAILED")) << worker_->log();
  EXPECT_EQ(get(r).body["completed_reason"], "attempts_exhausted");

  const auto retried = post(r + "/retry");
  ASSERT_EQ(retried.status, 200) << retried.body.dump();
  EXPECT_EQ(retried.body["status"], "ACTIVE");
  EXPECT_FALSE(retried.body.contains("completed_reason")) << retried.body.dump();
  ASSERT_TRUE(becomes(r, "COMPLETED")) << worker_->log();

  const auto got = receiver_.requests_to("/down");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].headers.at("idempotency-key"), got[1].headers.at("idempotency-key"))
      << "a new occurrence, not a repeat of the failed one";
  EXPECT_EQ(got[1].headers.at("nudge-attempt"), "1") << "a fresh attempt budget";
  const auto history = get(r + "/executions").body["items"];
  ASSERT_EQ(history.size(), 2u) << history.dump();
  EXPECT_EQ(history[0]["outcome"], "delivered");
  EXPECT_EQ(history[1]["outcome"], "failed");

  // Delivered now: there is nothing to retry.
  const auto again = post(r + "/retry");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body["error"]["code"], "conflict");
  EXPECT_EQ(receiver_.requests_to("/down").size(), 2u);
}

TEST_F(RetryFailed, TheBulkRouteRetriesWhatFailedAndLeavesTheRestAlone) {
  receiver_.on("/a", [](int n) { return n == 1 ? 500 : 200; });
  receiver_.on("/b", [](int n) { return n == 1 ? 500 : 200; });
  const std::string a = create_webhook("a", "/a");
  const std::string b = create_webhook("b", "/b");
  const long later = create_one("c");
  start_worker();
  ASSERT_TRUE(becomes(a, "FAILED") && becomes(b, "FAILED")) << worker_->log();

  const auto answer = post("/v1/reminders/retry", R"({"entity_type": "user"})");
  ASSERT_EQ(answer.status, 200) << answer.body.dump();
  EXPECT_EQ(answer.body["count"], 2);
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(later)).body["status"], "ACTIVE");
  EXPECT_TRUE(becomes(a, "COMPLETED") && becomes(b, "COMPLETED")) << worker_->log();
  EXPECT_EQ(receiver_.requests_to("/a").size(), 2u);
  EXPECT_EQ(receiver_.requests_to("/b").size(), 2u);

  const auto refused = post("/v1/reminders/retry", R"({"status": "DONE"})");
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(refused.error_field(), "status");
}

}  // namespace
}  // namespace nudge::test
