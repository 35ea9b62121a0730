// Delivery fields of a create (misfire_policy, max_attempts, a target that suits its channel)
// and the delivery attempts shown with executions.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using DeliveryFields = ApiTest;

// A valid create body with `change` applied (a JSON merge patch; null removes a field).
json body_with(const std::string& change) {
  json body = json::parse(R"({"entity_type":"u","entity_id":"1","event_type":"e",
                              "channel":"log","schedule_type":"recurring",
                              "interval_seconds":60})");
  body.merge_patch(json::parse(change));
  return body;
}

TEST_F(DeliveryFields, MisfirePolicyAndMaxAttemptsRoundTrip) {
  const auto r =
      post("/v1/reminders", body_with(R"({"misfire_policy":"fire_all","max_attempts":7})").dump());
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(r.body["misfire_policy"], "fire_all");
  EXPECT_EQ(r.body["max_attempts"], 7);
  EXPECT_FALSE(r.body.contains("retrying_occurrence"));
  EXPECT_FALSE(r.body.contains("attempts"));
  const long id = r.body["id"].get<long>();
  const auto got = get("/v1/reminders/" + std::to_string(id));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body, r.body);
  EXPECT_EQ(value<std::string>("SELECT misfire_policy FROM nudge.reminders"), "fire_all");
  EXPECT_EQ(value<int>("SELECT max_attempts FROM nudge.reminders"), 7);

  // The same identity again: the existing reminder, unchanged, whatever the new fields say.
  const auto again =
      post("/v1/reminders", body_with(R"({"misfire_policy":"skip","max_attempts":2})").dump());
  ASSERT_EQ(again.status, 200) << again.body.dump();
  EXPECT_EQ(again.body["id"], id);
  EXPECT_EQ(again.body["misfire_policy"], "fire_all");
  EXPECT_EQ(again.body["max_attempts"], 7);

  // Defaults: fire_once, and no max_attempts (the worker's).
  const auto plain = post("/v1/reminders", body_with(R"({"entity_id":"2"})").dump());
  ASSERT_EQ(plain.status, 201) << plain.body.dump();
  EXPECT_EQ(plain.body["misfire_policy"], "fire_once");
  EXPECT_FALSE(plain.body.contains("max_attempts"));

  // one_time takes fire_once; cron takes skip.
  const auto one_time =
      post("/v1/reminders", body_with(R"({"entity_id":"3","schedule_type":"one_time",
               "interval_seconds":null,"run_at":"2099-01-01T00:00:00Z",
               "misfire_policy":"fire_once","max_attempts":1})")
                                .dump());
  ASSERT_EQ(one_time.status, 201) << one_time.body.dump();
  EXPECT_EQ(one_time.body["misfire_policy"], "fire_once");
  EXPECT_EQ(one_time.body["max_attempts"], 1);
  const auto cron = post("/v1/reminders", body_with(R"({"entity_id":"4","schedule_type":"cron",
               "interval_seconds":null,"cron":"0 9 * * 1-5","timezone":"Europe/Berlin",
               "misfire_policy":"skip","max_attempts":100})")
                                              .dump());
  ASSERT_EQ(cron.status, 201) << cron.body.dump();
  EXPECT_EQ(cron.body["misfire_policy"], "skip");
  EXPECT_EQ(cron.body["max_attempts"], 100);
}

TEST_F(DeliveryFields, TargetsThatSuitTheirChannelAreAccepted) {
  auto r =
      post("/v1/reminders",
           body_with(R"({"channel":"webhook","target":"https://hooks.example.com/a?b=c"})").dump());
  EXPECT_EQ(r.status, 201) << r.body.dump();
  r = post("/v1/reminders",
           body_with(R"({"entity_id":"2","channel":"email","target":"ada@example.com"})").dump());
  EXPECT_EQ(r.status, 201) << r.body.dump();
  // No target: delivered to the entity's contact.
  r = post("/v1/reminders", body_with(R"({"entity_id":"3","channel":"webhook"})").dump());
  EXPECT_EQ(r.status, 201) << r.body.dump();
  EXPECT_FALSE(r.body.contains("target"));
}

TEST_F(DeliveryFields, BadValuesAreRejectedNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"schedule_type":"one_time","interval_seconds":null,"run_at":"2099-01-01T00:00:00Z",
           "misfire_policy":"skip"})",
       "misfire_policy"},
      {R"({"schedule_type":"one_time","interval_seconds":null,"run_at":"2099-01-01T00:00:00Z",
           "misfire_policy":"fire_all"})",
       "misfire_policy"},
      {R"({"misfire_policy":"sometimes"})", "misfire_policy"},
      {R"({"misfire_policy":""})", "misfire_policy"},
      {R"({"misfire_policy":1})", "misfire_policy"},
      {R"({"max_attempts":0})", "max_attempts"},
      {R"({"max_attempts":101})", "max_attempts"},
      {R"({"max_attempts":-1})", "max_attempts"},
      {R"({"max_attempts":3.5})", "max_attempts"},
      {R"({"max_attempts":"3"})", "max_attempts"},
      {R"({"channel":"webhook","target":"ftp://x"})", "target"},
      {R"({"channel":"webhook","target":"https://exa mple.com/"})", "target"},
      {R"({"channel":"webhook","target":"ada@example.com"})", "target"},
      {R"({"channel":"email","target":"not-an-address"})", "target"},
      {R"({"channel":"email","target":"https://example.com/"})", "target"},
  };
  for (const auto& [change, field] : cases) {
    SCOPED_TRACE(change);
    const auto r = post("/v1/reminders", body_with(change).dump());
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), field) << r.body.dump();
    EXPECT_TRUE(r.body["error"]["code"] == "invalid_value" ||
                r.body["error"]["code"] == "invalid_type")
        << r.body.dump();
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
}

TEST_F(DeliveryFields, MisfirePolicyAndMaxAttemptsCannotBePatched) {
  const long id = create_one("p");
  for (const std::string field : {"misfire_policy", "max_attempts"}) {
    const auto r = patch("/v1/reminders/" + std::to_string(id),
                         json{{field, field == "max_attempts" ? json(5) : json("skip")}}.dump());
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), field);
  }
}

json batch_item(int i, const std::string& change = "{}") {
  json item = body_with(change);
  item["entity_type"] = "batch";
  item["entity_id"] = std::to_string(i);
  return item;
}

TEST_F(DeliveryFields, ABadBatchItemNamesItsIndexAndCreatesNothing) {
  json items = json::array();
  for (int i = 0; i < 5; ++i) items.push_back(batch_item(i, R"({"misfire_policy":"skip"})"));
  items[3]["misfire_policy"] = "never";
  auto r = post("/v1/reminders/batch", json{{"items", items}}.dump());
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "items[3].misfire_policy");

  items[3]["misfire_policy"] = "skip";
  items[2]["max_attempts"] = 101;
  r = post("/v1/reminders/batch", json{{"items", items}}.dump());
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "items[2].max_attempts");

  // Only the database knows a target does not suit the channel: it names the item too.
  items[2].erase("max_attempts");
  items[4]["channel"] = "webhook";
  items[4]["target"] = "ftp://x";
  r = post("/v1/reminders/batch", json{{"items", items}}.dump());
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "items[4].target");

  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
}

TEST_F(DeliveryFields, BatchCarriesMisfirePolicyAndMaxAttempts) {
  json items = json::array();
  items.push_back(batch_item(0, R"({"misfire_policy":"fire_all","max_attempts":9})"));
  items.push_back(batch_item(1));
  items.push_back(batch_item(2, R"({"schedule_type":"one_time","interval_seconds":null,
      "run_at":"2099-01-01T00:00:00Z","max_attempts":1})"));
  const auto r = post("/v1/reminders/batch", json{{"items", items}}.dump());
  ASSERT_EQ(r.status, 200) << r.body.dump();
  ASSERT_EQ(r.body["items"].size(), 3u);
  EXPECT_EQ(r.body["items"][0]["reminder"]["misfire_policy"], "fire_all");
  EXPECT_EQ(r.body["items"][0]["reminder"]["max_attempts"], 9);
  EXPECT_EQ(r.body["items"][1]["reminder"]["misfire_policy"], "fire_once");
  EXPECT_FALSE(r.body["items"][1]["reminder"].contains("max_attempts"));
  EXPECT_EQ(r.body["items"][2]["reminder"]["max_attempts"], 1);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE misfire_policy = 'fire_all' "
                        "AND max_attempts = 9"),
            1);
}

TEST_F(DeliveryFields, BatchOfCronItemsCreatesThem) {
  json items = json::array();
  for (int i = 0; i < 50; ++i) {
    items.push_back(batch_item(i, R"({"schedule_type":"cron","interval_seconds":null,
        "cron":"0 9 * * 1-5","timezone":"Europe/Berlin","misfire_policy":"skip"})"));
  }
  const auto r = post("/v1/reminders/batch", json{{"items", items}}.dump());
  ASSERT_EQ(r.status, 200) << r.body.dump().substr(0, 500);
  ASSERT_EQ(r.body["items"].size(), 50u);
  for (const auto& item : r.body["items"]) {
    EXPECT_EQ(item["created"], true);
    EXPECT_EQ(item["reminder"]["schedule_type"], "cron");
    EXPECT_EQ(item["reminder"]["cron"], "0 9 * * 1-5");
    EXPECT_EQ(item["reminder"]["timezone"], "Europe/Berlin");
    EXPECT_EQ(item["reminder"]["misfire_policy"], "skip");
    EXPECT_TRUE(item["reminder"]["next_run_at"].is_string());
  }
  EXPECT_EQ(r.body["items"][49]["reminder"]["entity_id"], "49");
  // Every first fire is a weekday at 09:00 in Berlin, within the next week.
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders "
                        "WHERE schedule_type = 'cron' AND cron_schedule IS NOT NULL "
                        "AND extract(isodow FROM next_run_at AT TIME ZONE 'Europe/Berlin') "
                        "BETWEEN 1 AND 5 "
                        "AND to_char(next_run_at AT TIME ZONE 'Europe/Berlin', 'HH24:MI:SS') "
                        "= '09:00:00' AND next_run_at > now() "
                        "AND next_run_at <= now() + interval '4 days'"),
            50);
  // Again: the same reminders, none created.
  const auto again = post("/v1/reminders/batch", json{{"items", items}}.dump());
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.body["items"][0]["created"], false);
  EXPECT_EQ(again.body["items"][0]["reminder"]["id"], r.body["items"][0]["reminder"]["id"]);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 50);
}

TEST_F(DeliveryFields, ExecutionsShowTheirDeliveryAttempts) {
  const long id = create_one("x");
  sql("INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker) "
      "VALUES ($1, '2030-01-01T00:00:00Z', 'delivered', 2, 'w1')",
      id);
  sql("INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, "
      "status_code, "
      "error, response, duration_ms, worker) VALUES "
      "($1, '2030-01-01T00:00:00Z', 2, 'delivered', 200, NULL, 'ok', 12, 'w1'), "
      "($1, '2030-01-01T00:00:00Z', 1, 'failed', 503, 'HTTP 503', 'busy', 30, 'w2')",
      id);
  const auto r = get("/v1/reminders/" + std::to_string(id) + "/executions");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  ASSERT_EQ(r.body["items"].size(), 1u);
  const json& attempts = r.body["items"][0]["delivery_attempts"];
  ASSERT_EQ(attempts.size(), 2u) << r.body.dump();
  EXPECT_EQ(attempts[0]["attempt"], 1);
  EXPECT_EQ(attempts[0]["outcome"], "failed");
  EXPECT_EQ(attempts[0]["status_code"], 503);
  EXPECT_EQ(attempts[0]["error"], "HTTP 503");
  EXPECT_EQ(attempts[0]["response"], "busy");
  EXPECT_EQ(attempts[0]["duration_ms"], 30);
  EXPECT_EQ(attempts[0]["worker"], "w2");
  EXPECT_TRUE(attempts[0]["attempted_at"].is_string());
  EXPECT_EQ(attempts[1]["attempt"], 2);
  EXPECT_EQ(attempts[1]["outcome"], "delivered");
  EXPECT_FALSE(attempts[1].contains("error"));

  // An occurrence that has attempts but no ending (the reminder is not retrying it) is listed too.
  sql("INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, "
      "status_code, error, worker) VALUES ($1, '2030-01-02T00:00:00Z', 1, 'failed', 500, "
      "'HTTP 500', 'w3')",
      id);
  const auto both = get("/v1/reminders/" + std::to_string(id) + "/executions?limit=1");
  ASSERT_EQ(both.status, 200) << both.body.dump();
  ASSERT_EQ(both.body["items"].size(), 1u);
  EXPECT_EQ(both.body["items"][0]["outcome"], "unfinished");
  EXPECT_EQ(both.body["items"][0]["error"], "HTTP 500");
  EXPECT_FALSE(both.body["items"][0].contains("fired_at"));
  const auto older = get("/v1/reminders/" + std::to_string(id) + "/executions?limit=1&cursor=" +
                         both.body["next_cursor"].get<std::string>());
  ASSERT_EQ(older.status, 200) << older.body.dump();
  ASSERT_EQ(older.body["items"].size(), 1u);
  EXPECT_EQ(older.body["items"][0]["outcome"], "delivered");
}

}  // namespace
}  // namespace nudge::test
