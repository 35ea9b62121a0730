// Listing: newest first, filters, and keyset pages that neither skip nor repeat while rows are
// being inserted.

#include <atomic>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using List = ApiTest;

TEST_F(List, PagesWalkTwelveHundredRemindersWithoutGapOrRepeatDuringInserts) {
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
      "next_run_at) SELECT 'page', g::text, 'e', 'log', 'one_time', now() + interval '1 day' "
      "FROM generate_series(1, 1200) g");
  const long newest_before = value<long>("SELECT max(id) FROM nudge.reminders");

  std::atomic<bool> stop{false};
  std::thread inserter([&] {  // new reminders keep arriving while the client pages
    httplib::Client c("127.0.0.1", port_);
    for (int i = 0; !stop; ++i) {
      c.Post(
          "/v1/reminders",
          R"({"entity_type":"late","entity_id":")" + std::to_string(i) +
              R"(","event_type":"e","channel":"log","schedule_type":"one_time","run_at":"2099-01-01T00:00:00Z"})",
          "application/json");
    }
  });

  std::vector<long> seen;
  std::string path = "/v1/reminders?entity_type=page&limit=70";
  for (int pages = 0; pages < 100; ++pages) {
    const auto r = get(path);
    ASSERT_EQ(r.status, 200) << r.body.dump();
    for (const auto& item : r.body["items"]) seen.push_back(item["id"].get<long>());
    if (r.body["next_cursor"].is_null()) break;
    path = "/v1/reminders?entity_type=page&limit=70&cursor=" +
           r.body["next_cursor"].get<std::string>();
  }
  stop = true;
  inserter.join();

  ASSERT_EQ(seen.size(), 1200u);
  EXPECT_EQ(std::set<long>(seen.begin(), seen.end()).size(), 1200u);
  EXPECT_TRUE(std::is_sorted(seen.rbegin(), seen.rend()));  // newest first
  EXPECT_EQ(seen.front(), newest_before);
  EXPECT_GT(value<long>("SELECT count(*) FROM nudge.reminders WHERE entity_type = 'late'"), 0);
}

TEST_F(List, FiltersCombine) {
  create_one("a");
  create_one("b");
  const long c = create_one("c");
  ASSERT_EQ(post("/v1/reminders/" + std::to_string(c) + "/pause").status, 200);
  auto r = get("/v1/reminders?status=PAUSED");
  ASSERT_EQ(r.body["items"].size(), 1u);
  EXPECT_EQ(r.body["items"][0]["id"], c);
  r = get("/v1/reminders?entity_type=user&entity_id=a&event_type=e&channel=log");
  ASSERT_EQ(r.body["items"].size(), 1u);
  EXPECT_EQ(r.body["items"][0]["entity_id"], "a");
  EXPECT_TRUE(r.body["next_cursor"].is_null());
  EXPECT_EQ(get("/v1/reminders?channel=email").body["items"].size(), 0u);
  EXPECT_EQ(get("/v1/reminders").body["items"].size(), 3u);
}

TEST_F(List, TheStopFlagFilterFindsTheRemindersAFlagStopped) {
  const long waiting =
      create_one("a", R"(,"stop_condition_type":"db_check","stop_condition_value":"done")");
  create_one("b", R"(,"stop_condition_type":"db_check","stop_condition_value":"other")");
  create_one("c");
  ASSERT_EQ(put("/v1/flags/done", R"({"value": true})").status, 200);
  const auto r = get("/v1/reminders?stop_condition_value=done");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  ASSERT_EQ(r.body["items"].size(), 1u);
  EXPECT_EQ(r.body["items"][0]["id"], waiting);
  EXPECT_EQ(r.body["items"][0]["status"], "COMPLETED");
  EXPECT_EQ(r.body["items"][0]["completed_reason"], "stop_condition");
  EXPECT_EQ(get("/v1/reminders?stop_condition_value=").error_field(), "stop_condition_value");
}

TEST_F(List, ExecutionsComeNewestFirstInPages) {
  const long id = create_one("x");
  sql("INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker) "
      "SELECT $1, timestamptz '2026-01-01' + g * interval '1 minute', 'delivered', 1, 'w' "
      "FROM generate_series(1, 25) g",
      id);
  std::vector<std::string> times;
  std::string path = "/v1/reminders/" + std::to_string(id) + "/executions?limit=10";
  for (int i = 0; i < 10; ++i) {
    const auto r = get(path);
    ASSERT_EQ(r.status, 200) << r.body.dump();
    for (const auto& e : r.body["items"]) times.push_back(e["scheduled_for"]);
    if (r.body["next_cursor"].is_null()) break;
    path = "/v1/reminders/" + std::to_string(id) +
           "/executions?limit=10&cursor=" + r.body["next_cursor"].get<std::string>();
  }
  ASSERT_EQ(times.size(), 25u);
  EXPECT_EQ(std::set<std::string>(times.begin(), times.end()).size(), 25u);
  EXPECT_TRUE(std::is_sorted(times.rbegin(), times.rend()));
  EXPECT_EQ(
      get("/v1/reminders/" + std::to_string(create_one("y")) + "/executions").body["items"].size(),
      0u);
  // A cursor of another list, or a forged one, is refused as every list refuses it (it was
  // PostgreSQL's "invalid input syntax for type timestamp with time zone").
  const std::string from_reminders = get("/v1/reminders?limit=1").body["next_cursor"];
  for (const std::string& cursor : {from_reminders, std::string("c178")}) {
    const auto r = get("/v1/reminders/" + std::to_string(id) + "/executions?cursor=" + cursor);
    EXPECT_EQ(r.status, 400) << cursor;
    EXPECT_EQ(r.error_field(), "cursor");
    EXPECT_EQ(r.body["error"]["message"], "cursor: is not a cursor this server gave");
  }
}

// The page that ends on a key of 200 characters (399 bytes) gives a cursor that is taken
// (explore32a F3: one past 99 bytes was refused, and paging stopped there).
TEST_F(List, FlagsArePutReadAndListedByKey) {
  std::string long_key = "b";
  std::string long_path = "b";
  for (int i = 0; i < 199; ++i) {
    long_key += "\u00e9";
    long_path += "%C3%A9";
  }
  for (const auto& [path, key] : std::vector<std::pair<std::string, std::string>>{
           {long_path, long_key}, {"a", "a"}, {"c", "c"}}) {
    const auto r = put("/v1/flags/" + path, R"({"value": false})");
    ASSERT_EQ(r.status, 200) << r.body.dump();
    EXPECT_EQ(r.body["key"], key);
    EXPECT_EQ(r.body["value"], false);
  }
  // A filter of 200 characters is one too, however many bytes they take.
  EXPECT_EQ(get("/v1/reminders?entity_type=" + long_path).status, 200);
  EXPECT_EQ(put("/v1/flags/a", R"({"value": true})").body["value"], true);
  EXPECT_EQ(get("/v1/flags/a").body["value"], true);
  auto r = get("/v1/flags?limit=2");
  ASSERT_EQ(r.body["items"].size(), 2u);
  EXPECT_EQ(r.body["items"][0]["key"], "a");
  r = get("/v1/flags?limit=2&cursor=" + r.body["next_cursor"].get<std::string>());
  ASSERT_EQ(r.body["items"].size(), 1u);
  EXPECT_EQ(r.body["items"][0]["key"], "c");
  EXPECT_TRUE(r.body["next_cursor"].is_null());
}

}  // namespace
}  // namespace nudge::test
