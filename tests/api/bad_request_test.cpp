// Bad input of every kind: a 4xx with a JSON error naming the field, never a 500, never a row.

#include <array>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

struct BadRequest {
  std::string method, path, body;
  int status;
  std::string field;  // expected error.field ("" for none)
};

// A valid create body with `change` applied (a JSON merge patch; null removes a field).
std::string create_with(const std::string& change) {
  json body = json::parse(R"({"entity_type":"u","entity_id":"1","event_type":"e","channel":"log",
                              "schedule_type":"one_time","run_at":"2030-01-01T00:00:00Z"})");
  body.merge_patch(json::parse(change));
  return body.dump();
}

const std::string k201(201, 'x');
const std::string k2049(2049, 'x');

const std::vector<BadRequest> kCases = {
    // the body itself
    {"POST", "/v1/reminders", "{not json", 400, "body"},
    {"POST", "/v1/reminders", "", 400, "body"},
    {"POST", "/v1/reminders", "[1,2]", 400, "body"},
    {"POST", "/v1/reminders", "\"text\"", 400, "body"},
    {"POST", "/v1/reminders", std::string(300000, ' '), 413, "body"},
    // a key given twice: refused naming it, never the last one winning
    {"POST", "/v1/reminders", create_with("{}").insert(1, R"("run_at":"2031-01-01T00:00:00Z",)"),
     400, "run_at"},
    {"POST", "/v1/reminders", create_with(R"({"payload":{"k":1}})").insert(1, R"("payload":{},)"),
     400, "payload"},
    {"POST", "/v1/reminders/batch",
     "{\"items\":[" + create_with("{}") + "," + create_with(R"({"entity_id":"2"})") + "," +
         create_with(R"({"entity_id":"3"})").insert(1, R"("run_at":"2031-01-01T00:00:00Z",)") +
         "]}",
     400, "items[2].run_at"},
    {"PUT", "/v1/flags/f", R"({"value":true,"value":false})", 400, "value"},
    {"POST", "/v1/events",
     R"({"event_type":"e","entity_type":"u","entity_id":"1","data":{"a":{"b":1,"b":2}}})", 400,
     "data.a.b"},
    // required fields
    {"POST", "/v1/reminders", create_with(R"({"entity_type":null})"), 400, "entity_type"},
    {"POST", "/v1/reminders", create_with(R"({"entity_id":null})"), 400, "entity_id"},
    {"POST", "/v1/reminders", create_with(R"({"event_type":null})"), 400, "event_type"},
    {"POST", "/v1/reminders", create_with(R"({"channel":null})"), 400, "channel"},
    {"POST", "/v1/reminders", create_with(R"({"schedule_type":null})"), 400, "schedule_type"},
    {"POST", "/v1/reminders", create_with(R"({"run_at":null})"), 400, "run_at"},
    {"POST", "/v1/reminders", create_with(R"({"schedule_type":"recurring","run_at":null})"), 400,
     "interval_seconds"},
    // wrong types
    {"POST", "/v1/reminders", create_with(R"({"entity_type":5})"), 400, "entity_type"},
    {"POST", "/v1/reminders", create_with(R"({"entity_id":["a"]})"), 400, "entity_id"},
    {"POST", "/v1/reminders", create_with(R"({"payload":"text"})"), 400, "payload"},
    {"POST", "/v1/reminders", create_with(R"({"payload":[1]})"), 400, "payload"},
    {"POST", "/v1/reminders",
     create_with(R"({"schedule_type":"recurring","interval_seconds":"60"})"), 400,
     "interval_seconds"},
    {"POST", "/v1/reminders",
     create_with(R"({"schedule_type":"recurring","interval_seconds":1.5})"), 400,
     "interval_seconds"},
    {"POST", "/v1/reminders", create_with(R"({"max_fires":true})"), 400, "max_fires"},
    {"POST", "/v1/reminders", create_with(R"({"run_at":1767225600})"), 400, "run_at"},
    // unknown fields and values
    {"POST", "/v1/reminders", create_with(R"({"entity_tpye":"u"})"), 400, "entity_tpye"},
    {"POST", "/v1/reminders", create_with(R"({"channel":"sms"})"), 400, "channel"},
    {"POST", "/v1/reminders", create_with(R"({"schedule_type":"cronish"})"), 400, "schedule_type"},
    {"POST", "/v1/reminders",
     create_with(R"({"stop_condition_type":"api_check","stop_condition_value":"f"})"), 400,
     "stop_condition_type"},
    {"POST", "/v1/reminders", create_with(R"({"stop_condition_value":"f"})"), 400,
     "stop_condition_type"},
    {"POST", "/v1/reminders", create_with(R"({"stop_condition_type":"db_check"})"), 400,
     "stop_condition_value"},
    // ranges and limits
    {"POST", "/v1/reminders", create_with(R"({"schedule_type":"recurring","interval_seconds":0})"),
     400, "interval_seconds"},
    {"POST", "/v1/reminders", create_with(R"({"schedule_type":"recurring","interval_seconds":-5})"),
     400, "interval_seconds"},
    {"POST", "/v1/reminders",
     create_with(R"({"schedule_type":"recurring","interval_seconds":99999999999})"), 400,
     "interval_seconds"},
    {"POST", "/v1/reminders",
     create_with(R"({"schedule_type":"recurring","interval_minutes":600000})"), 400,
     "interval_minutes"},
    // no fire after 9999-12-31T23:59:59Z, whose year RFC 3339 could not write
    {"POST", "/v1/reminders", create_with(R"({"run_at":"9999-12-31T23:59:59-00:01"})"), 400,
     "run_at"},
    {"POST", "/v1/reminders",
     create_with(R"({"schedule_type":"cron","cron":"0 0 1 1 *","run_at":"9999-06-01T00:00:00Z"})"),
     400, "run_at"},
    {"POST", "/v1/reminders/batch",
     "{\"items\":[" + create_with("{}") + "," +
         create_with(R"({"entity_id":"2","run_at":"9999-12-31T23:00:00-05:00"})") + "]}",
     400, "items[1].run_at"},
    {"POST", "/v1/reminders",
     create_with(R"({"schedule_type":"recurring","interval_minutes":1,"interval_seconds":60})"),
     400, "interval_minutes"},
    {"POST", "/v1/reminders", create_with(R"({"interval_seconds":60})"), 400, "interval_seconds"},
    {"POST", "/v1/reminders", create_with(R"({"max_fires":0})"), 400, "max_fires"},
    {"POST", "/v1/reminders", create_with(R"({"entity_type":""})"), 400, "entity_type"},
    {"POST", "/v1/reminders", create_with(R"({"entity_id":")" + k201 + "\"}"), 400, "entity_id"},
    {"POST", "/v1/reminders", create_with(R"({"target":")" + k2049 + "\"}"), 400, "target"},
    {"POST", "/v1/reminders", create_with(R"({"ends_at":"2029-01-01T00:00:00Z"})"), 400, "ends_at"},
    {"POST", "/v1/reminders", create_with(R"({"max_attempts":0})"), 400, "max_attempts"},
    {"POST", "/v1/reminders", create_with(R"({"max_attempts":101})"), 400, "max_attempts"},
    {"POST", "/v1/reminders", create_with(R"({"max_attempts":"3"})"), 400, "max_attempts"},
    {"POST", "/v1/reminders", create_with(R"({"misfire_policy":"later"})"), 400, "misfire_policy"},
    {"POST", "/v1/reminders", create_with(R"({"misfire_policy":"skip"})"), 400, "misfire_policy"},
    // names of only white space are as empty as "" (checked by the database)
    {"POST", "/v1/reminders", create_with(R"({"entity_type":"   "})"), 400, "entity_type"},
    {"POST", "/v1/reminders", create_with(R"({"entity_id":"\t"})"), 400, "entity_id"},
    {"POST", "/v1/reminders", create_with(R"({"event_type":" \n "})"), 400, "event_type"},
    // an interval named as sent, for cron as for one_time
    {"POST", "/v1/reminders",
     create_with(R"({"schedule_type":"cron","cron":"0 9 * * *","interval_minutes":5})"), 400,
     "interval_minutes"},
    // targets that do not suit the channel (checked by the database); a log reminder has none
    {"POST", "/v1/reminders", create_with(R"({"target":"http://127.0.0.1:18777/"})"), 400,
     "target"},
    {"POST", "/v1/reminders", create_with(R"({"channel":"webhook","target":"ftp://x"})"), 400,
     "target"},
    {"POST", "/v1/reminders", create_with(R"({"channel":"email","target":"not-an-address"})"), 400,
     "target"},
    // times
    {"POST", "/v1/reminders", create_with(R"({"run_at":"2030-01-01T00:00:00"})"), 400, "run_at"},
    {"POST", "/v1/reminders", create_with(R"({"run_at":"2030-01-01"})"), 400, "run_at"},
    {"POST", "/v1/reminders", create_with(R"({"run_at":"2030-02-30T00:00:00Z"})"), 400, "run_at"},
    {"POST", "/v1/reminders", create_with(R"({"run_at":"2030-01-01T25:00:00Z"})"), 400, "run_at"},
    {"POST", "/v1/reminders", create_with(R"({"run_at":"tomorrow"})"), 400, "run_at"},
    {"POST", "/v1/reminders", create_with(R"({"ends_at":"2031-01-01T00:00:00+0100"})"), 400,
     "ends_at"},
    // an offset PostgreSQL cannot take (past ±15:59) is named as any bad time is, in every field
    {"POST", "/v1/reminders", create_with(R"({"run_at":"2030-01-01T00:00:00+20:00"})"), 400,
     "run_at"},
    {"POST", "/v1/reminders", create_with(R"({"run_at":"2030-01-01T00:00:00-16:00"})"), 400,
     "run_at"},
    {"POST", "/v1/reminders", create_with(R"({"ends_at":"2031-01-01T00:00:00+23:59"})"), 400,
     "ends_at"},
    {"POST", "/v1/reminders/batch",
     "{\"items\":[" + create_with(R"({"run_at":"2030-01-01T00:00:00+16:00"})") + "]}", 400,
     "items[0].run_at"},
    {"PATCH", "/v1/reminders/1", R"({"run_at":"2030-01-01T00:00:00+20:00"})", 400, "run_at"},
    {"PATCH", "/v1/reminders/1", R"({"ends_at":"2031-01-01T00:00:00-18:00"})", 400, "ends_at"},
    {"POST", "/v1/schedules/preview",
     R"({"schedule_type":"cron","cron":"0 9 * * *","from":"2030-01-01T00:00:00+20:00"})", 400,
     "from"},
    {"POST", "/v1/schedules/parse", R"({"text":"tomorrow at 9","now":"2030-01-01T00:00:00+20:00"})",
     400, "now"},
    {"POST", "/v1/events",
     R"({"event_type":"e","entity_type":"u","entity_id":"1","occurred_at":"2030-01-01T00:00:00+20:00"})",
     400, "occurred_at"},
    {"POST", "/v1/events/batch",
     R"({"items":[{"event_type":"e","entity_type":"u","entity_id":"1","occurred_at":"2030-01-01T00:00:00+20:00"}]})",
     400, "items[0].occurred_at"},
    // batch
    {"POST", "/v1/reminders/batch", R"({"items":[]})", 400, "items"},
    {"POST", "/v1/reminders/batch", R"({"items":{}})", 400, "items"},
    {"POST", "/v1/reminders/batch", R"({})", 400, "items"},
    {"POST", "/v1/reminders/batch", R"({"items":[1]})", 400, "items[0]"},
    {"POST", "/v1/events/batch", R"({"items":["e"]})", 400, "items[0]"},
    {"POST", "/v1/reminders/batch", R"({"items":[], "extra":1})", 400, "extra"},
    {"POST", "/v1/reminders/batch",
     R"({"items":[)" + create_with(R"({"target":"http://127.0.0.1:18777/"})") + "]}", 400,
     "items[0].target"},
    {"POST", "/v1/reminders/batch", R"({"items":[)" + create_with(R"({"entity_id":"  "})") + "]}",
     400, "items[0].entity_id"},
    // lists
    {"GET", "/v1/reminders?limit=0", "", 400, "limit"},
    {"GET", "/v1/reminders?limit=501", "", 400, "limit"},
    {"GET", "/v1/reminders?limit=ten", "", 400, "limit"},
    {"GET", "/v1/reminders?cursor=garbage", "", 400, "cursor"},
    {"GET", "/v1/reminders?status=DONE", "", 400, "status"},
    {"GET", "/v1/reminders?channel=sms", "", 400, "channel"},
    {"GET", "/v1/reminders?stauts=ACTIVE", "", 400, "stauts"},
    {"GET", "/v1/flags?limit=-1", "", 400, "limit"},
    // ids that cannot be one (400 naming id), and one that is none (404)
    {"GET", "/v1/reminders/abc", "", 400, "id"},
    {"GET", "/v1/reminders/99999999999999999999", "", 400, "id"},
    {"GET", "/v1/reminders/9223372036854775808", "", 400, "id"},
    {"GET", "/v1/reminders/0", "", 400, "id"},
    {"GET", "/v1/reminders/-1", "", 400, "id"},
    {"PATCH", "/v1/reminders/1.5", R"({"max_fires":2})", 400, "id"},
    {"POST", "/v1/reminders/abc/cancel", "", 400, "id"},
    {"GET", "/v1/reminders/abc/executions", "", 400, "id"},
    {"GET", "/v1/rules/abc", "", 400, "id"},
    {"DELETE", "/v1/rules/0", "", 400, "id"},
    {"GET", "/v1/events/abc", "", 400, "id"},
    {"GET", "/v1/reminders/9223372036854775807", "", 404, ""},
    {"GET", "/v1/reminders/424242", "", 404, ""},
    {"GET", "/v1/rules/424242", "", 404, ""},
    {"GET", "/v1/events/424242", "", 404, ""},
    {"POST", "/v1/reminders/424242/pause", "", 404, ""},
    // a route that takes no body takes none, or {}: anything else is refused, unread no more
    {"POST", "/v1/reminders/1/pause", "garbage", 400, "body"},
    {"POST", "/v1/reminders/1/resume", R"({"junk":)", 400, "body"},
    {"POST", "/v1/reminders/1/cancel", "[]", 400, "body"},
    {"POST", "/v1/reminders/1/cancel", R"({"x":1})", 400, "x"},
    {"GET", "/v1/reminders/424242/executions", "", 404, ""},
    // reschedule
    {"PATCH", "/v1/reminders/1", R"({})", 400, "body"},
    {"PATCH", "/v1/reminders/1", R"({"entity_id":"2"})", 400, "entity_id"},
    {"PATCH", "/v1/reminders/1", R"({"channel":"email"})", 400, "channel"},
    {"PATCH", "/v1/reminders/1", R"({"run_at":"soon"})", 400, "run_at"},
    {"PATCH", "/v1/reminders/1", R"({"interval_seconds":60})", 400, "interval_seconds"},
    {"PATCH", "/v1/reminders/1", R"({"interval_minutes":5})", 400, "interval_minutes"},
    {"PATCH", "/v1/reminders/1", R"({"run_at":"9999-12-31T23:30:00-01:00"})", 400, "run_at"},
    {"PATCH", "/v1/reminders/1", R"({"colour":"red"})", 400, "colour"},
    // flags
    {"PUT", "/v1/flags/f", R"({"value":"yes"})", 400, "value"},
    {"PUT", "/v1/flags/f", R"({})", 400, "value"},
    {"PUT", "/v1/flags/f", R"({"value":true,"valeu":false})", 400, "valeu"},
    {"PUT", "/v1/flags/" + k201, R"({"value":true})", 400, "key"},
    {"GET", "/v1/flags/never-set", "", 404, ""},
    // contacts
    {"PUT", "/v1/contacts/u/1/sms", R"({"address":"a@example.com"})", 400, "channel"},
    {"PUT", "/v1/contacts/u/1/email", R"({"address":"nope"})", 400, "address"},
    {"PUT", "/v1/contacts/u/1/email", R"({"address":""})", 400, "address"},
    {"PUT", "/v1/contacts/u/1/email", R"({"address":"a@example.com","x":1})", 400, "x"},
    {"PUT", "/v1/contacts/u/" + k201 + "/email", R"({"address":"a@example.com"})", 400,
     "entity_id"},
    {"GET", "/v1/contacts/u/1/email", "", 404, ""},
    {"DELETE", "/v1/contacts/u/1/webhook", "", 404, ""},
    {"DELETE", "/v1/contacts/u/1/webhook", R"({"junk":)", 400, "body"},
    {"DELETE", "/v1/rules/1", R"({"force":true})", 400, "force"},
    // routes and methods
    {"GET", "/v2/reminders", "", 404, ""},
    {"DELETE", "/v1/reminders/1", "", 405, ""},
    {"PUT", "/v1/reminders", "{}", 405, ""},
    {"GET", "/v1/reminders/1/pause", "", 405, ""},
    {"POST", "/health", "", 405, ""},
};

using BadRequests = ApiTest;

// "items[1]. must be a JSON object" had a dot for a colon.
// A required field given under a misspelt name: the misspelling is named, not only the absence.
TEST_F(BadRequests, AMisspeltRequiredFieldIsNamedAsSent) {
  auto r = put("/v1/contacts/u/1/email", R"({"adress": "a@example.com"})");
  ASSERT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.body["error"]["code"], "unknown_field");
  EXPECT_EQ(r.error_field(), "adress");
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("address is required"),
            std::string::npos)
      << r.body.dump();
  r = post("/v1/reminders/batch", R"({"items": [{"entity_typ": "u", "entity_id": "1",
      "event_type": "e", "channel": "log", "schedule_type": "one_time",
      "run_at": "2099-01-01T00:00:00Z"}]})");
  ASSERT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "items[0].entity_typ");
  // Required fields that are not strings: a flag's value, a batch's items, a rule's action
  // (explore14a #13).
  for (const auto& [method, path, body, field] : std::vector<std::array<std::string, 4>>{
           {"PUT", "/v1/flags/f", R"({"vlue": true})", "vlue"},
           {"POST", "/v1/reminders/batch", R"({"item": []})", "item"},
           {"POST", "/v1/events/batch", R"({"itemss": []})", "itemss"},
           {"POST", "/v1/rules", R"({"name": "r", "event_type": "e", "actio": {}})", "actio"}}) {
    SCOPED_TRACE(path);
    r = send(method, path, body);
    EXPECT_EQ(r.body["error"]["code"], "unknown_field") << r.body.dump();
    EXPECT_EQ(r.error_field(), field) << r.body.dump();
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("is required (misspelt?)"),
              std::string::npos)
        << r.body.dump();
  }
  // Absent with nothing like it given: missing, as before.
  r = put("/v1/contacts/u/1/email", R"({"to": "a@example.com"})");
  EXPECT_EQ(r.body["error"]["code"], "missing_field") << r.body.dump();
  EXPECT_EQ(r.error_field(), "address");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.contacts") +
                value<long>("SELECT count(*) FROM nudge.reminders"),
            0);
}

// A status is changed by its own routes: the PATCH says which, not "create a new reminder".
TEST_F(BadRequests, APatchOfTheStatusNamesTheRoutesThatChangeIt) {
  const auto r = patch("/v1/reminders/1", R"({"status": "PAUSED"})");
  ASSERT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.body["error"]["code"], "immutable_field");
  EXPECT_EQ(r.error_field(), "status");
  EXPECT_EQ(r.body["error"]["message"],
            "status: is changed by POST /v1/reminders/{id}/pause, /resume, /cancel or /retry, not "
            "by PATCH");
}

TEST_F(BadRequests, ABatchItemThatIsNotAnObjectIsNamedAsAnyField) {
  for (const std::string path : {"/v1/reminders/batch", "/v1/events/batch"}) {
    SCOPED_TRACE(path);
    const std::string item = path == "/v1/events/batch"
                                 ? R"({"event_type":"e","entity_type":"u","entity_id":"1"})"
                                 : create_with("{}");
    const Reply r = post(path, "{\"items\":[" + item + ",[1]]}");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.error_field(), "items[1]");
    EXPECT_EQ(r.body["error"]["code"], "invalid_type");
    EXPECT_EQ(r.body["error"]["message"], "items[1]: must be a JSON object");
  }
}

// "time zone displacement out of range", PostgreSQL's own words, named no field.
TEST_F(BadRequests, ATimeWhoseOffsetPostgresqlCannotTakeSaysTheRange) {
  const Reply r = post("/v1/reminders", create_with(R"({"run_at":"2030-01-01T00:00:00+20:00"})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["message"],
            "run_at: must be an RFC 3339 time with an offset within ±15:59, e.g. "
            "2026-01-31T09:00:00Z");
  const Reply edge =
      post("/v1/reminders", create_with(R"({"run_at":"2030-01-01T00:00:00+15:59"})"));
  ASSERT_EQ(edge.status, 201) << edge.body.dump();
  EXPECT_EQ(value<std::string>("SELECT next_run_at AT TIME ZONE 'UTC' FROM nudge.reminders"),
            "2029-12-31 08:01:00");
}

TEST_F(BadRequests, EachIsRejectedWithItsStatusAndFieldAndWritesNothing) {
  ASSERT_GE(kCases.size(), 40u);
  ASSERT_EQ(create_one("existing"), 1);  // the reminder PATCH cases aim at
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.method + " " + c.path.substr(0, 80) + " " + c.body.substr(0, 120));
    const Reply r = send(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << r.body.dump();
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << "not a JSON error body";
    EXPECT_TRUE(r.body["error"]["code"].is_string());
    EXPECT_TRUE(r.body["error"]["message"].is_string());
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.contacts"), 0);
  EXPECT_EQ(get("/v1/reminders/1").body["status"], "ACTIVE");
  EXPECT_TRUE(api_->running());
}

}  // namespace
}  // namespace nudge::test
