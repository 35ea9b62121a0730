// What a body may be, over real connections: nested at most 64 levels deep on every route that
// reads one (100,000 levels crashed nudge-api).

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

std::string create_with_payload(const std::string& entity_id, const std::string& payload = "{}") {
  return R"({"entity_type":"user","entity_id":")" + entity_id +
         R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
         R"("run_at":"2099-01-01T00:00:00Z","payload":)" +
         payload + "}";
}

// `depth` arrays nested in one another: [[...]].
std::string nested_arrays_text(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

using BodyLimits = ApiTest;

TEST_F(BodyLimits, ADeeplyNestedBodyIsA400NamingItsPathOnEveryRouteThatReadsOne) {
  const long id = create_one("nested");
  const auto doc = get("/openapi.json");
  ASSERT_EQ(doc.status, 200);
  int routes = 0;
  for (const auto& [path, item] : doc.body["paths"].items()) {
    for (const std::string method : {"POST", "PUT", "PATCH", "DELETE"}) {
      if (!item.contains(lowercase(method))) continue;
      ++routes;
      SCOPED_TRACE(method + " " + path);
      for (const std::size_t depth : {std::size_t{64}, std::size_t{20000}, std::size_t{100000}}) {
        const Reply r =
            send(method, concrete_path(path, id), R"({"x":)" + nested_arrays_text(depth) + "}");
        EXPECT_EQ(r.status, 400) << r.body.dump().substr(0, 300);
        EXPECT_EQ(r.body["error"]["code"], "invalid_value") << r.body.dump().substr(0, 300);
        EXPECT_EQ(r.error_field().substr(0, 4), "x[0]") << r.body.dump().substr(0, 300);
        EXPECT_NE(r.body["error"]["message"].get<std::string>().find("at most 64 levels"),
                  std::string::npos);
      }
    }
  }
  EXPECT_EQ(routes, 19);
  EXPECT_TRUE(api_->running());
}

TEST_F(BodyLimits, APayloadOrDataNestedToTheLimitIsKeptAndOneLevelMoreIsRefused) {
  // The body is the first level, the payload the second: 62 arrays inside it reach 64.
  const Reply kept =
      post("/v1/reminders", create_with_payload("deep", R"({"a":)" + nested_arrays_text(62) + "}"));
  ASSERT_EQ(kept.status, 201) << kept.body.dump();
  EXPECT_EQ(kept.body["payload"]["a"].dump(), nested_arrays_text(62));
  const Reply refused = post(
      "/v1/reminders", create_with_payload("deeper", R"({"a":)" + nested_arrays_text(63) + "}"));
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(refused.error_field().substr(0, 10), "payload.a[") << refused.body.dump();
  // In a batch item, and in an event's data (which crashed nudge-api too).
  const Reply batch =
      post("/v1/reminders/batch",
           R"({"items":[)" +
               create_with_payload("b", R"({"a":)" + nested_arrays_text(100000) + "}") + "]}");
  EXPECT_EQ(batch.status, 400);
  EXPECT_EQ(batch.error_field().substr(0, 20), "items[0].payload.a[0") << batch.body.dump();
  const Reply event = post("/v1/events", R"({"event_type":"e","entity_type":"u","entity_id":"1",)"
                                         R"("data":{"a":)" +
                                             nested_arrays_text(100000) + "}}");
  EXPECT_EQ(event.status, 400);
  EXPECT_EQ(event.error_field().substr(0, 8), "data.a[0") << event.body.dump();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.events"), 0);
  EXPECT_TRUE(api_->running());
}

}  // namespace
}  // namespace nudge::test
