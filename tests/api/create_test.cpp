// POST /v1/reminders and /v1/reminders/batch: created once, found again, race-free.

#include <atomic>
#include <mutex>
#include <thread>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using Create = ApiTest;

constexpr const char* kVerbatim =
    R"({"entity_type": "interviewer", "entity_id": "INT_100", "event_type": "feedback_form",
   "channel": "email", "schedule_type": "recurring", "interval_minutes": 60,
   "stop_condition_type": "db_check", "stop_condition_value": "feedback_submitted"})";

TEST_F(Create, TheWellKnownBodyCreatesOnceThenReturnsTheSameReminder) {
  const auto first = post("/v1/reminders", kVerbatim);
  ASSERT_EQ(first.status, 201) << first.body.dump();
  EXPECT_EQ(first.body["status"], "ACTIVE");
  EXPECT_EQ(first.body["interval_seconds"], 3600);
  EXPECT_EQ(first.body["fire_count"], 0);
  EXPECT_EQ(first.body["channel"], "email");
  EXPECT_EQ(first.body["stop_condition_value"], "feedback_submitted");
  EXPECT_TRUE(first.body["next_run_at"].is_string());
  EXPECT_TRUE(first.body["id"].is_number_integer());

  const auto again = post("/v1/reminders", kVerbatim);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body["id"], first.body["id"]);
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(first.body["id"].get<long>())).body, first.body);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1);
}

TEST_F(Create, ThirtyTwoConcurrentIdenticalCreatesGiveOneReminder) {
  std::atomic<int> created{0}, found{0}, other{0};
  std::mutex mutex;
  std::string others;
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&] {
      httplib::Client c("127.0.0.1", port_);
      auto r = c.Post("/v1/reminders", kVerbatim, "application/json");
      if (r && r->status == 201)
        ++created;
      else if (r && r->status == 200)
        ++found;
      else {
        ++other;
        std::lock_guard lock(mutex);
        others += r ? std::to_string(r->status) + " " + r->body + "\n"
                    : "transport error " + httplib::to_string(r.error()) + "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created, 1);
  EXPECT_EQ(found, 31);
  EXPECT_EQ(other, 0) << others;
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1);
}

TEST_F(Create, PastRunAtAndFractionalSecondsAreAccepted) {
  const auto r = post("/v1/reminders", R"({"entity_type":"u","entity_id":"1","event_type":"e",
      "channel":"log","schedule_type":"one_time","run_at":"2020-02-29T23:59:59.123456+02:00",
      "payload":{"name":"Ada","n":[1,2]}})");
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(value<std::string>("SELECT next_run_at::text FROM nudge.reminders"),
            "2020-02-29 21:59:59.123456+00");
  EXPECT_EQ(r.body["payload"]["name"], "Ada");
}

// A target is sent as written: "{{...}}" in one is refused rather than sent literally, one by one
// and in a batch alike.
TEST_F(Create, ATargetHoldingAPlaceholderIsRefusedNamingTarget) {
  const std::string templated = R"({"entity_type":"u","entity_id":"1","event_type":"e",
      "channel":"webhook","schedule_type":"one_time","run_at":"2030-01-01T00:00:00Z",
      "target":"http://127.0.0.1:18777/u/{{entity_id}}?x={{payload.a}}"})";
  const std::string message =
      "a reminder's target is not a template; rules render {{...}} in theirs (a webhook's URL "
      "can be kept whole in a secret: {{secret.NAME}} alone)";
  const auto one = post("/v1/reminders", templated);
  EXPECT_EQ(one.status, 400);
  EXPECT_EQ(one.error_field(), "target");
  EXPECT_EQ(one.body["error"]["message"], "target: " + message);
  const auto batch = post("/v1/reminders/batch", R"({"items":[)" + templated + "]}");
  EXPECT_EQ(batch.status, 400);
  EXPECT_EQ(batch.error_field(), "items[0].target");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
}

// What the database refuses about a cron's zone is a 400 naming the field, one by one and in a
// batch: a POSIX offset after a slash (Etc/GMT-16).
TEST_F(Create, ACronTheDatabaseCannotPlaceIsRefusedNamingTheField) {
  struct Case {
    std::string fields, field, message_part;
  };
  for (const auto& c : std::vector<Case>{
           {R"("cron":"0 9 * * *","timezone":"Etc/GMT-16")", "timezone", "is an offset"},
       }) {
    SCOPED_TRACE(c.fields);
    const std::string body =
        R"({"entity_type":"u","entity_id":"1","event_type":"e","channel":"log",)"
        R"("schedule_type":"cron",)" +
        c.fields + "}";
    const auto one = post("/v1/reminders", body);
    EXPECT_EQ(one.status, 400) << one.body.dump();
    EXPECT_EQ(one.error_field(), c.field);
    EXPECT_NE(one.body["error"]["message"].get<std::string>().find(c.message_part),
              std::string::npos)
        << one.body.dump();
    const auto batch = post("/v1/reminders/batch", R"({"items":[)" + body + "]}");
    EXPECT_EQ(batch.status, 400) << batch.body.dump();
    EXPECT_EQ(batch.error_field(), "items[0]." + c.field);
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
}

// A cron whose next occurrence is decades away (29 February on a Sunday or a Thursday: 2032,
// then 2052) is created at it, one by one and in a batch, and its preview lists it: the search
// looked 8 years ahead and refused it.
TEST_F(Create, ACronWhoseNextOccurrenceIsDecadesAwayIsCreatedAtIt) {
  const std::string body =
      R"({"entity_type":"u","entity_id":"1","event_type":"e","channel":"log",)"
      R"("schedule_type":"cron","cron":"0 0 29 2 */4","run_at":"2033-01-01T00:00:00Z"})";
  const auto one = post("/v1/reminders", body);
  ASSERT_EQ(one.status, 201) << one.body.dump();
  EXPECT_EQ(one.body["next_run_at"], "2052-02-29T00:00:00+00:00");
  std::string second = body;
  second.replace(second.find(R"("1")"), 3, R"("2")");
  const auto batch = post("/v1/reminders/batch", R"({"items":[)" + second + "]}");
  EXPECT_EQ(batch.status, 200) << batch.body.dump();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE next_run_at = '2052-02-29Z'"),
            2);
  const auto preview =
      post("/v1/schedules/preview", R"({"schedule_type":"cron","cron":"0 0 29 2 */4","count":2,)"
                                    R"("from":"2033-01-01T00:00:00Z"})");
  ASSERT_EQ(preview.status, 200) << preview.body.dump();
  EXPECT_EQ(preview.body["times"],
            json::parse(R"(["2052-02-29T00:00:00+00:00","2060-02-29T00:00:00+00:00"])"));
}

// A log reminder's fires are lines in the worker's log: a target would be ignored, so it is
// refused, one by one and in a batch alike (the database decides, for SQL and rules too).
TEST_F(Create, ALogReminderWithATargetIsRefusedNamingTarget) {
  const std::string log_with_target = R"({"entity_type":"u","entity_id":"1","event_type":"e",
      "channel":"log","schedule_type":"one_time","run_at":"2030-01-01T00:00:00Z",
      "target":"http://127.0.0.1:18777/"})";
  const auto one = post("/v1/reminders", log_with_target);
  EXPECT_EQ(one.status, 400);
  EXPECT_EQ(one.error_field(), "target");
  EXPECT_EQ(one.body["error"]["message"],
            "target: a log reminder has no target (its fires go to the worker's log)");
  const auto batch = post("/v1/reminders/batch", R"({"items":[)" + log_with_target + "]}");
  EXPECT_EQ(batch.status, 400);
  EXPECT_EQ(batch.error_field(), "items[0].target");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
  // Without the target it is created.
  json plain = json::parse(log_with_target);
  plain.erase("target");
  EXPECT_EQ(post("/v1/reminders", plain.dump()).status, 201);
}

TEST_F(Create, BatchCreatesInOrderAndIsIdempotentPerItem) {
  json items = json::array();
  for (int i = 0; i < 1000; ++i) {
    items.push_back({{"entity_type", "batch"},
                     {"entity_id", std::to_string(i)},
                     {"event_type", "e"},
                     {"channel", "log"},
                     {"schedule_type", "recurring"},
                     {"interval_seconds", 60}});
  }
  create_one("5");  // not in the batch: untouched
  const auto r = post("/v1/reminders/batch", json{{"items", items}}.dump());
  ASSERT_EQ(r.status, 200) << r.body.dump().substr(0, 500);
  ASSERT_EQ(r.body["items"].size(), 1000u);
  EXPECT_EQ(r.body["items"][7]["reminder"]["entity_id"], "7");
  EXPECT_EQ(r.body["items"][7]["created"], true);
  // Repeating an item returns the existing reminder, in its place.
  items[0]["interval_seconds"] = 120;
  const auto again = post("/v1/reminders/batch", json{{"items", {items[0], items[1]}}}.dump());
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.body["items"][0]["created"], false);
  EXPECT_EQ(again.body["items"][1]["reminder"]["id"], r.body["items"][1]["reminder"]["id"]);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1001);
}

TEST_F(Create, BatchWithRepeatsAndStoppedFlagsAnswersAsOneByOneCreates) {
  ASSERT_EQ(put("/v1/flags/done", R"({"value": true})").status, 200);
  const json a = {{"entity_type", "u"},
                  {"entity_id", "a"},
                  {"event_type", "e"},
                  {"channel", "log"},
                  {"schedule_type", "recurring"},
                  {"interval_seconds", 60}};
  json stopped = a;
  stopped["entity_id"] = "b";
  stopped["stop_condition_type"] = "db_check";
  stopped["stop_condition_value"] = "done";
  const auto r = post("/v1/reminders/batch", json{{"items", {a, a, stopped}}}.dump());
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["items"][0]["created"], true);
  EXPECT_EQ(r.body["items"][1]["created"], false);  // the same identity, already created
  EXPECT_EQ(r.body["items"][1]["reminder"]["id"], r.body["items"][0]["reminder"]["id"]);
  EXPECT_EQ(r.body["items"][2]["reminder"]["status"], "COMPLETED");  // its flag is already true
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 2);
}

TEST_F(Create, ABadBatchItemRejectsTheWholeBatchNamingItsIndex) {
  json items = json::array();
  for (int i = 0; i < 10; ++i) {
    items.push_back({{"entity_type", "batch"},
                     {"entity_id", std::to_string(i)},
                     {"event_type", "e"},
                     {"channel", "log"},
                     {"schedule_type", "one_time"},
                     {"run_at", "2030-01-01T00:00:00Z"}});
  }
  items[6].erase("run_at");
  auto r = post("/v1/reminders/batch", json{{"items", items}}.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_field(), "items[6].run_at");
  // A rule only the database checks also names the item, and nothing is half-written.
  items[6]["run_at"] = "2030-01-01T00:00:00Z";
  items[3]["ends_at"] = "2029-01-01T00:00:00Z";
  r = post("/v1/reminders/batch", json{{"items", items}}.dump());
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "items[3].ends_at");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
}

}  // namespace
}  // namespace nudge::test
