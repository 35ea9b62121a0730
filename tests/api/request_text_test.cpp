// Text the database would refuse or misread, wherever a request carries it (a path segment, a
// query parameter's name or value, a cursor, any string or key of a JSON body): a 400 naming
// where it was, never a 500 (nor httplib's EXCEPTION_WHAT header), never a string cut short at
// its NUL, and nothing written.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

struct TextCase {
  std::string method, path, body;
  std::string field;
  std::string message;  // the end of error.message
};

const std::string kUtf8 = "must be valid UTF-8";
const std::string kNul = "must not contain U+0000 (NUL)";
const std::string kCursor = "is not a cursor this server gave";

const std::vector<TextCase> kTextCases = {
    // ids in paths
    {"GET", "/v1/reminders/%ff", "", "id", kUtf8},
    {"POST", "/v1/reminders/%ff/pause", "", "id", kUtf8},
    {"GET", "/v1/reminders/%ff/executions", "", "id", kUtf8},
    {"GET", "/v1/rules/%ff", "", "id", kUtf8},
    {"GET", "/v1/events/%ff", "", "id", kUtf8},
    // names in paths
    {"GET", "/v1/flags/%ff", "", "key", kUtf8},
    {"PUT", "/v1/flags/%ff", R"({"value":true})", "key", kUtf8},
    {"PUT", "/v1/flags/a%00b", R"({"value":true})", "key", kNul},
    {"PUT", "/v1/contacts/%ff/x/email", R"({"address":"a@example.com"})", "entity_type", kUtf8},
    {"GET", "/v1/contacts/u/%c3/email", "", "entity_id", kUtf8},
    {"GET", "/v1/contacts/u/a%00", "", "entity_id", kNul},
    // query parameters: names (named as sent) and values
    {"GET", "/v1/reminders?%ff=1", "", "%FF", kUtf8},
    {"GET", "/v1/reminders/1?a%ffb=1", "", "a%FFb", kUtf8},
    {"GET", "/v1/reminders?entity_id=%ff", "", "entity_id", kUtf8},
    {"GET", "/v1/reminders?entity_id=a%00b", "", "entity_id", kNul},
    {"GET", "/v1/events?entity_type=%e2%82", "", "entity_type", kUtf8},
    // cursors: hex of bytes that are not text
    {"GET", "/v1/flags?cursor=c1ff", "", "cursor", kCursor},
    {"GET", "/v1/targets?cursor=c1ff", "", "cursor", kCursor},
    {"GET", "/v1/reminders/1/executions?cursor=c1ff", "", "cursor", kCursor},
    {"GET", "/v1/flags?cursor=c16100", "", "cursor", kCursor},
};

// A valid create body with `entity_id` and `extra` fields.
std::string create_text_body(const std::string& entity_id, const std::string& extra = "") {
  return R"({"entity_type":"u","entity_id":")" + entity_id +
         R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
         R"("run_at":"2099-01-01T00:00:00Z")" +
         extra + "}";
}

const std::vector<TextCase> kNulCases = {
    {"POST", "/v1/reminders", create_text_body(R"(a\u0000b)"), "entity_id", kNul},
    {"POST", "/v1/reminders",
     R"({"entity_type":"u","entity_id":"1","event_type":"e","channel":"log",)"
     R"("schedule_type":"cron","cron":"0 9 * * *","timezone":"Europe/Berlin\u0000"})",
     "timezone", kNul},
    {"POST", "/v1/reminders", create_text_body("1", R"(,"payload":{"k":"a\u0000b"})"), "payload.k",
     kNul},
    {"POST", "/v1/reminders", create_text_body("1", R"(,"payload":{"l":[1,{"a\u0000":2}]})"),
     R"(payload.l[1].a\u0000)", kNul},
    {"POST", "/v1/reminders/batch",
     R"({"items":[)" + create_text_body("0") + "," + create_text_body("1") + "," +
         create_text_body("2") + "," + create_text_body(R"(4\u0000x)") + "]}",
     "items[3].entity_id", kNul},
    {"PATCH", "/v1/reminders/1", R"({"payload":{"k":"\u0000"}})", "payload.k", kNul},
    {"POST", "/v1/reminders/pause", R"({"entity_id":"a\u0000"})", "entity_id", kNul},
    {"PUT", "/v1/flags/f", R"({"value":true,"\u0000":1})", R"(\u0000)", kNul},
    {"PUT", "/v1/contacts/u/1/email", R"({"address":"a@example.com\u0000"})", "address", kNul},
    {"POST", "/v1/events",
     R"({"event_type":"e","entity_type":"u","entity_id":"1","data":{"x":"\u0000"}})", "data.x",
     kNul},
    {"POST", "/v1/rules", R"({"name":"r\u0000","event_type":"e","action":{}})", "name", kNul},
    {"POST", "/v1/schedules/parse", R"({"text":"every day\u0000"})", "text", kNul},
};

// Raw bytes that are not UTF-8 in a body: not JSON (RFC 8259), and named by where they are.
const std::vector<TextCase> kBodyUtf8Cases = {
    {"POST", "/v1/reminders", create_text_body("a\xff"), "entity_id", kUtf8},
    {"POST", "/v1/reminders", create_text_body("1", ",\"payload\":{\"k\":\"\xc3\"}"), "payload.k",
     kUtf8},
    {"POST", "/v1/reminders", create_text_body("1", ",\"payload\":{\"l\":[1,\"\xff\"]}"),
     "payload.l[1]", kUtf8},
    {"POST", "/v1/reminders", create_text_body("1", ",\"payload\":{\"\xff\":1}"), "payload", kUtf8},
    {"POST", "/v1/reminders/batch",
     R"({"items":[)" + create_text_body("0") + "," + create_text_body("1") + "," +
         create_text_body("2") + "," + create_text_body("4\xe2\x82") + "]}",
     "items[3].entity_id", kUtf8},
    {"PUT", "/v1/flags/f", "{\"\xff\":true}", "body", kUtf8},
};

// An escape of half a surrogate pair: no UTF-8 text holds it. It was "the body is not valid
// JSON" naming body (explore14a #4).
const std::string kLoneSurrogate =
    R"(must be valid UTF-8: \ud800-\udbff is escaped only before \udc00-\udfff, as a pair)";
const std::vector<TextCase> kBodySurrogateCases = {
    {"PUT", "/v1/flags/f", R"({"value": "\ud800"})", "value", kLoneSurrogate},
    {"POST", "/v1/reminders", create_text_body("1", R"(,"payload":{"k":"a\udfffb"})"), "payload.k",
     kLoneSurrogate},
    {"POST", "/v1/reminders", create_text_body("1", R"(,"payload":{"l":[1,"\ud83d x"]})"),
     "payload.l[1]", kLoneSurrogate},
    {"POST", "/v1/reminders/batch",
     R"({"items":[)" + create_text_body("0") + "," + create_text_body(R"(4\udc00)") + "]}",
     "items[1].entity_id", kLoneSurrogate},
};

bool ends_with(const std::string& text, const std::string& end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

class RequestText : public ApiTest {
 protected:
  // Each case is a 400 naming its field with its message, and only the reminder made first is
  // there afterwards, unchanged.
  void expect_each_refused(const std::vector<TextCase>& cases) {
    ASSERT_EQ(create_one("existing"), 1);
    for (const auto& c : cases) {
      SCOPED_TRACE(c.method + " " + c.path + " " + c.body.substr(0, 200));
      const Reply r = send(c.method, c.path, c.body);
      EXPECT_EQ(r.status, 400) << r.body.dump();
      EXPECT_EQ(r.header("EXCEPTION_WHAT"), "");
      EXPECT_EQ(r.body["error"]["code"], "invalid_value") << r.body.dump();
      EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
      EXPECT_TRUE(ends_with(r.body["error"].value("message", ""), c.field + ": " + c.message))
          << r.body.dump();
    }
    EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1);
    EXPECT_EQ(value<std::string>("SELECT entity_id FROM nudge.reminders"), "existing");
    EXPECT_EQ(get("/v1/reminders/1").body["status"], "ACTIVE");
    for (const std::string table : {"status_flags", "contacts", "rules", "events"})
      EXPECT_EQ(value<long>("SELECT count(*) FROM nudge." + table), 0) << table;
    EXPECT_TRUE(api_->running());
  }
};

TEST_F(RequestText, TextThatIsNotStorableIsA400NamingWhereItWas) {
  expect_each_refused(kTextCases);
}

TEST_F(RequestText, ALoneSurrogateEscapeIsA400NamingWhereItWas) {
  expect_each_refused(kBodySurrogateCases);
  // A whole pair is text.
  EXPECT_EQ(
      post("/v1/reminders", create_text_body("2", R"(,"payload":{"k":"\ud83d\ude00"})")).status,
      201);
}

// "a\u0000b" was stored as "a" (libpq's strings end at NUL), so "a\u0000b" and "a\u0000c" were
// the same reminder; jsonb refused it elsewhere, without naming the field.
TEST_F(RequestText, AStringHoldingNulIsRefusedNamingItsPathOnEveryRoute) {
  expect_each_refused(kNulCases);
}

TEST_F(RequestText, BytesThatAreNotUtf8InABodyAreNamedByTheirPath) {
  expect_each_refused(kBodyUtf8Cases);
}

}  // namespace
}  // namespace nudge::test
