// POST /v1/reminders/{pause,resume,cancel}: every reminder matching the ids or filters changes in
// one transaction; the answer has the count and the ids; bad input is a 400 naming the field.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using Bulk = ApiTest;

TEST_F(Bulk, PauseResumeAndCancelByFilterAndByIds) {
  const long a = create_one("a");
  const long b = create_one("b");
  const long c = create_one("c");

  const auto paused = post("/v1/reminders/pause", R"({"entity_type": "user", "status": "ACTIVE"})");
  ASSERT_EQ(paused.status, 200) << paused.body.dump();
  EXPECT_EQ(paused.body["count"], 3);
  EXPECT_EQ(paused.body["ids"], json::array({a, b, c}));
  EXPECT_EQ(paused.body["more"], false);
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(b)).body["status"], "PAUSED");

  const auto resumed = post("/v1/reminders/resume", "{\"ids\": [" + std::to_string(b) + "]}");
  ASSERT_EQ(resumed.status, 200) << resumed.body.dump();
  EXPECT_EQ(resumed.body["ids"], json::array({b}));
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(b)).body["status"], "ACTIVE");

  const auto cancelled = post("/v1/reminders/cancel", R"({"entity_id": "a"})");
  EXPECT_EQ(cancelled.body["ids"], json::array({a}));
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(a)).body["status"], "CANCELLED");
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(c)).body["status"], "PAUSED");

  // Nothing matches: 200 with an empty list.
  const auto none = post("/v1/reminders/cancel", R"({"entity_id": "nobody"})");
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body["count"], 0);
}

TEST_F(Bulk, BadInputIsA400NamingTheFieldAndChangesNothing) {
  const long a = create_one("a");
  const std::pair<std::string, std::string> cases[] = {
      {"{}", "body"},
      {"", "body"},
      {R"({"ids": []})", "ids"},
      {R"({"ids": "1,2"})", "ids"},
      {R"({"ids": [1, 0]})", "ids[1]"},
      {R"({"ids": [1, -3]})", "ids[1]"},
      {R"({"ids": [1, "2"]})", "ids[1]"},
      {R"({"status": "DONE"})", "status"},
      {R"({"channel": "sms"})", "channel"},
      {R"({"entity_id": ""})", "entity_id"},
      {R"({"entity": "a"})", "entity"},
  };
  for (const auto& [body, field] : cases) {
    const auto r = post("/v1/reminders/cancel", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(r.error_field(), field) << body << " " << r.body.dump();
  }
  std::string many = "{\"ids\": [1";
  for (int i = 2; i <= 1001; ++i) many += "," + std::to_string(i);
  const auto too_many = post("/v1/reminders/pause", many + "]}");
  EXPECT_EQ(too_many.status, 400);
  EXPECT_EQ(too_many.error_field(), "ids");
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(a)).body["status"], "ACTIVE");
}

}  // namespace
}  // namespace nudge::test
