// A create request as the batch function reads it: CreateInput::append_json writes the JSON
// without an nlohmann tree, so what it writes is compared here with the tree the same input
// makes (every field set, none, and strings that need escaping).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "input.hpp"
#include "json_text.hpp"

namespace nudge::api {
namespace {

using nlohmann::json;

json written(const json& body) {
  const Secrets secrets{{"token", {"x", {"93.184.215.14"}}}};
  const AddressGuard guard;
  std::string out = "[";
  parse_create(body, secrets, guard).append_json(out);
  out += ']';
  return json::parse(out).at(0);
}

TEST(CreateInput, AnItemWithOnlyWhatIsRequiredGetsAnEmptyPayload) {
  const json body = {
      {"entity_type", "user"}, {"entity_id", "42"},           {"event_type", "signup"},
      {"channel", "log"},      {"schedule_type", "one_time"}, {"run_at", "2099-01-01T00:00:00Z"},
      {"target", nullptr}};
  EXPECT_EQ(written(body), json({{"entity_type", "user"},
                                 {"entity_id", "42"},
                                 {"event_type", "signup"},
                                 {"channel", "log"},
                                 {"schedule_type", "one_time"},
                                 {"run_at", "2099-01-01T00:00:00Z"},
                                 {"payload", json::object()}}));
}

TEST(CreateInput, AnItemWithEveryFieldKeepsThemAllWithMinutesAsSeconds) {
  const json request = {{"method", "PUT"},
                        {"headers", {{"Authorization", "Bearer {{secret.token}}"}}},
                        {"body", {{"k", nullptr}}}};
  const json body = {{"entity_type", "t\"q\\"},
                     {"entity_id", "id\t\n\u00e9\u2603\x01"},
                     {"event_type", "e"},
                     {"channel", "webhook"},
                     {"schedule_type", "recurring"},
                     {"interval_minutes", 5},
                     {"run_at", "2099-01-01T00:00:00+02:00"},
                     {"target", "https://93.184.215.14/hook"},
                     {"payload", {{"n", 1}, {"x", nullptr}, {"s", "a\"b"}}},
                     {"stop_condition_type", "db_check"},
                     {"stop_condition_value", "done:1"},
                     {"max_fires", 3},
                     {"ends_at", "2100-01-01T00:00:00Z"},
                     {"misfire_policy", "skip"},
                     {"max_attempts", 7},
                     {"request", request}};
  json expected = body;
  expected.erase("interval_minutes");
  expected["interval_seconds"] = 300;
  EXPECT_EQ(written(body), expected);
}

TEST(CreateInput, ACronItemKeepsItsExpressionAndZone) {
  const json body = {{"entity_type", "a"},         {"entity_id", "b"},
                     {"event_type", "c"},          {"channel", "email"},
                     {"schedule_type", "cron"},    {"cron", "0 9 * * 1-5"},
                     {"timezone", "Europe/Paris"}, {"target", "a@example.com"}};
  json expected = body;
  expected["payload"] = json::object();
  EXPECT_EQ(written(body), expected);
}

// The field a body's error names, or "" when the body is read.
std::string refused_field(const std::string& body) {
  try {
    parse_object(body);
    return "";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), "invalid_json") << body;
    return e.field();
  }
}

TEST(RequestBody, AKeyGivenTwiceInOneObjectIsRefusedNamingItsPath) {
  const struct {
    std::string body, field;
  } cases[] = {
      {R"({"run_at":"a","run_at":"b"})", "run_at"},
      {R"({"payload":{"k":1,"j":{"x":1},"k":2}})", "payload.k"},
      {R"({"items":[{"a":1},{"a":1},{"a":1,"run_at":"x","run_at":"y"}]})", "items[2].run_at"},
      {R"({"items":[[],[{"b":{"c":[0,{"d":1,"d":1}]}}]]})", "items[1][0].b.c[1].d"},
      {R"({"a":{},"a":{}})", "a"},
      {R"({"a":1)", "body"},  // not JSON at all
  };
  for (const auto& c : cases) EXPECT_EQ(refused_field(c.body), c.field) << c.body;
}

TEST(RequestBody, KeysThatRepeatOnlyAcrossObjectsAreReadAsJsonParseReadsThem) {
  const std::string body =
      R"({"items":[{"a":1,"b":[1,2,{"a":null}]},{"a":2.5,"b":"x"}],"a":{"a":true},"z":"\u00e9"})";
  EXPECT_EQ(refused_field(body), "");
  EXPECT_EQ(parse_object(body), json::parse(body));
}

TEST(JsonText, StringsAreEscapedAsNlohmannEscapesThem) {
  for (const std::string& text : {std::string(""), std::string("plain"), std::string("q\"b\\s/"),
                                  std::string("\b\f\n\r\t\x01\x1f\x7f"),
                                  std::string("\u00e9\u2603\U0001F600"), std::string(1, '\0')}) {
    std::string out;
    append_json_string(out, text);
    EXPECT_EQ(out, json(text).dump()) << text;
  }
}

}  // namespace
}  // namespace nudge::api
