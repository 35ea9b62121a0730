// Batches and bulk changes can keep a thread and a connection busy for seconds: one token runs
// at most a quarter of [api] threads of them at once (4 of 16), and the rest are answered 429 at
// once, so another token's requests are served meanwhile (explore21a #1: one token's batches,
// within its rate limit, stalled another token's creates for 10 s).

#include <atomic>
#include <thread>
#include <vector>

#include "api/api_fixture.hpp"
#include "support/prometheus_text.hpp"

namespace nudge::test {
namespace {

using namespace std::chrono_literals;

class BulkSlots : public ApiTest {
 protected:
  // A lock wait far past this test's deadlines: the batches wait for the table lock below.
  BulkSlots()
      : ApiTest({{"NUDGE_API_AUTH", "token"},
                 {"NUDGE_API_RATE_PER_TOKEN", "0"},
                 {"NUDGE_DATABASE_LOCK_TIMEOUT_MS", "30000"},
                 {"NUDGE_DATABASE_STATEMENT_TIMEOUT_MS", "30000"}}) {}

  static std::string event_batch(int n) {
    return R"({"items": [{"event_type": "done", "entity_type": "task", "entity_id": "b)" +
           std::to_string(n) + R"("}]})";
  }

  std::string noisy_ = make_token("noisy", "read,write");
  std::string quiet_ = make_token("quiet", "read,write");
};

TEST_F(BulkSlots, ATokensBatchesPastAQuarterOfTheThreadsAre429AndOthersAreServed) {
  constexpr int kBatches = 7, kRunning = 4;
  // An application's transaction holds the events table: every event batch waits for it.
  pqxx::connection app(db_.url());
  pqxx::work held(app);
  held.exec0("LOCK TABLE nudge.events IN SHARE MODE");

  std::vector<Reply> answers(kBatches);
  std::atomic<int> answered{0};
  std::vector<std::thread> posting;
  for (int i = 0; i < kBatches; ++i) {
    posting.emplace_back([&, i] {
      httplib::Client client("127.0.0.1", port_);
      client.set_read_timeout(60);
      answers[static_cast<std::size_t>(i)] = to_reply(
          client.Post("/v1/events/batch", bearer(noisy_), event_batch(i), "application/json"));
      ++answered;
    });
  }
  // EXPECT: on failure the test goes on to release the table and join the posting threads.
  EXPECT_TRUE(wait_until(20s, [&] { return answered.load() == kBatches - kRunning; }))
      << answered.load() << " batches answered";
  for (const auto& a : answers) {
    if (a.status == 0) continue;
    EXPECT_EQ(a.status, 429) << a.body.dump();
    EXPECT_EQ(a.header("Retry-After"), "1");
    EXPECT_NE(a.body["error"]["message"].get<std::string>().find(
                  "token noisy has 4 batches and bulk changes running already"),
              std::string::npos)
        << a.body.dump();
  }

  // The other token: a single create, a bulk change and a batch are served meanwhile.
  const auto create = send_with(bearer(quiet_), "POST", "/v1/reminders",
                                R"({"entity_type": "user", "entity_id": "q1", "event_type": "e",
                                    "channel": "log", "schedule_type": "one_time",
                                    "run_at": "2099-01-01T00:00:00Z"})");
  EXPECT_EQ(create.status, 201) << create.body.dump();
  const auto pause = send_with(bearer(quiet_), "POST", "/v1/reminders/pause",
                               R"({"entity_type": "user", "entity_id": "q1"})");
  EXPECT_EQ(pause.status, 200) << pause.body.dump();
  const auto batch = send_with(bearer(quiet_), "POST", "/v1/reminders/batch",
                               R"({"items": [{"entity_type": "user", "entity_id": "q2",
                                   "event_type": "e", "channel": "log",
                                   "schedule_type": "one_time",
                                   "run_at": "2099-01-01T00:00:00Z"}]})");
  EXPECT_EQ(batch.status, 200) << batch.body.dump();
  // The noisy token's single requests are not bulk: served too.
  EXPECT_EQ(send_with(bearer(noisy_), "GET", "/v1/reminders").status, 200);
  EXPECT_EQ(answered.load(), kBatches - kRunning) << "a held batch was answered";

  held.commit();
  for (auto& t : posting) t.join();
  long recorded = 0;
  for (const auto& a : answers) recorded += a.status == 200 ? 1 : 0;
  EXPECT_EQ(recorded, kRunning);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.events"), kRunning);
  // Once they are answered, the token's slots are free again.
  EXPECT_EQ(send_with(bearer(noisy_), "POST", "/v1/events/batch", event_batch(99)).status, 200);

  // /metrics says whose requests were refused and who kept the threads busy.
  const auto scraped = client_->Get("/metrics", bearer(make_token("prometheus", "metrics")));
  ASSERT_TRUE(scraped && scraped->status == 200);
  const std::string text = scraped->body;
  EXPECT_EQ(sample_value(text, R"(nudge_api_token_requests_total{token="noisy",status="429"})"),
            kBatches - kRunning)
      << text;
  EXPECT_EQ(sample_value(text, R"(nudge_api_token_requests_total{token="noisy",status="200"})"),
            kRunning + 2);
  EXPECT_EQ(sample_value(text, R"(nudge_api_token_requests_total{token="quiet",status="201"})"), 1);
  EXPECT_EQ(sample_value(text, R"(nudge_api_token_request_duration_seconds_count{token="noisy"})"),
            kBatches + 2);
  // The held batches kept their threads until the table was released.
  EXPECT_GT(sample_value(text, R"(nudge_api_token_request_duration_seconds_sum{token="noisy"})")
                .value_or(0),
            sample_value(text, R"(nudge_api_token_request_duration_seconds_sum{token="quiet"})")
                .value_or(0));
  EXPECT_EQ(promtool_problems(text), "");
}

}  // namespace
}  // namespace nudge::test
