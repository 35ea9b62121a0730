// A webhook reminder's `request` over HTTP: a bad one (header injection included) is a 400 naming
// the field before anything is stored; a secret must be configured; the answers show the request
// with its placeholders, never a secret's value.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

constexpr char kApiToken[] = "tok_live_api_0123456789";

class Requests : public ApiTest {
 protected:
  // `api` may go to example.com in a header; `free` (a header's token too) to no host.
  Requests()
      : ApiTest({{"NUDGE_SECRETS_API", kApiToken},
                 {"NUDGE_SECRET_HOSTS_API", "example.com,*.example.com"},
                 {"NUDGE_SECRETS_FREE", "tok_free_0123456789"}}) {}

  // A webhook create body with this request.
  static std::string with_request(const std::string& request,
                                  const std::string& channel = "webhook") {
    json body = json::parse(R"({"entity_type": "user", "entity_id": "u1", "event_type": "nag",
      "schedule_type": "one_time", "run_at": "2030-01-01T00:00:00Z",
      "target": "https://example.com/hook", "payload": {"subject": "hi"}})");
    body["channel"] = channel;
    body["request"] = json::parse(request);
    return body.dump();
  }
};

TEST_F(Requests, ABadRequestIsA400NamingTheFieldAndNothingIsStored) {
  const struct {
    std::string request;
    std::string field;
    std::string code;
    std::string channel = "webhook";
  } cases[] = {
      {R"("PUT")", "request", "invalid_type"},
      {R"({"body": {"a": 1}})", "request", "invalid_value", "log"},
      {R"({"verb": "PUT"})", "request.verb", "unknown_field"},
      {R"({"method": "TRACE"})", "request.method", "invalid_value"},
      {R"({"timeout_ms": 0})", "request.timeout_ms", "invalid_value"},
      {R"({"timeout_ms": "5000"})", "request.timeout_ms", "invalid_value"},
      // Header injection: a line break in a value or in a name.
      {R"({"headers": {"X-Note": "hi\r\nHost: evil.example"}})", "request.headers.X-Note",
       "invalid_value"},
      {R"({"headers": {"X-Note\r\nHost": "evil.example"}})", "request.headers", "invalid_value"},
      {R"({"headers": {"Host": "evil.example"}})", "request.headers.Host", "invalid_value"},
      {R"({"headers": {"nudge-signature": "t=1,v1=0"}})", "request.headers.nudge-signature",
       "invalid_value"},
      {R"({"headers": {"Content-Type": "text/plain"}})", "request.headers.Content-Type",
       "invalid_value"},
      {R"({"headers": {"Authorization": "Bearer {{secret.nope}}"}})",
       "request.headers.Authorization", "unknown_secret"},
      // A secret with no hosts goes in no header.
      {R"({"headers": {"Authorization": "Bearer {{secret.free}}"}})",
       "request.headers.Authorization", "invalid_value"},
      {R"({"headers": {"X-Who": "{{payload.subject}}"}})", "request.headers.X-Who",
       "invalid_value"},
      {R"({"method": "GET", "body": {"a": 1}})", "request.body", "invalid_value"},
      {R"({"body": "text"})", "request.content_type", "missing_field"},
      // What only the database knows: the body's placeholders against the payload.
      {R"({"body": {"t": "{{payload.nope}}"}})", "request.body", "invalid_value"},
      {R"({"body": {"t": "{{secret.api}}"}})", "request.body", "invalid_value"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.request);
    const Reply r = post("/v1/reminders", with_request(c.request, c.channel));
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
    EXPECT_EQ(r.body["error"]["code"], c.code) << r.body.dump();
  }
  EXPECT_EQ(get("/v1/reminders").body["items"].size(), 0u);
}

// Whoever creates a reminder chooses its target: a header sends a secret only to the hosts
// configured for it (explore29a #1: any write token sent every secret to a receiver of its own).
TEST_F(Requests, AHeadersSecretGoesOnlyToItsHosts) {
  const std::string request = R"({"headers": {"Authorization": "Bearer {{secret.api}}"}})";
  json body = json::parse(with_request(request));
  for (const std::string target :
       {"https://example.com/hook", "https://eu.api.example.com/x", "https://EXAMPLE.com./x"}) {
    body["entity_id"] = target;
    body["target"] = target;
    EXPECT_EQ(post("/v1/reminders", body.dump()).status, 201) << target;
  }
  for (const std::string target : {"https://evil.example/hook", "https://example.com.evil.example/",
                                   "https://example.com@evil.example/"}) {
    body["target"] = target;
    const Reply r = post("/v1/reminders", body.dump());
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(r.error_field(), "request.headers.Authorization") << r.body.dump();
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("may not be sent to "),
              std::string::npos)
        << r.body.dump();
    EXPECT_EQ(r.body.dump().find(kApiToken), std::string::npos);
  }
  const Reply rule = post("/v1/rules", R"({"name": "r", "event_type": "e", "action": {"type":
    "remind", "reminder": {"event_type": "f", "channel": "webhook", "schedule_type": "one_time",
    "target": "https://evil.example/hook", "request": )" +
                                           request + "}}}");
  EXPECT_EQ(rule.status, 400) << rule.body.dump();
  EXPECT_EQ(rule.error_field(), "action.reminder.request.headers.Authorization");
  const Reply free =
      post("/v1/reminders", with_request(R"({"headers": {"X": "{{secret.free}}"}})"));
  EXPECT_NE(free.body["error"]["message"].get<std::string>().find("has no [secret_hosts]"),
            std::string::npos)
      << free.body.dump();
}

TEST_F(Requests, ABatchNamesTheItemWhoseRequestIsBad) {
  const std::string good =
      with_request(R"({"method": "PUT", "body": {"t": "{{payload.subject}}"}})");
  json second = json::parse(good);
  second["entity_id"] = "u2";
  second["request"]["headers"] = {{"Host", "evil.example"}};
  const Reply r = post("/v1/reminders/batch", json{{"items", {json::parse(good), second}}}.dump());
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "items[1].request.headers.Host");
  second["request"] = json::parse(R"({"body": {"t": "{{payload.other}}"}})");
  const Reply db = post("/v1/reminders/batch", json{{"items", {json::parse(good), second}}}.dump());
  EXPECT_EQ(db.status, 400) << db.body.dump();
  EXPECT_EQ(db.error_field(), "items[1].request.body");
  const Reply ok = post("/v1/reminders/batch", json{{"items", {json::parse(good)}}}.dump());
  ASSERT_EQ(ok.status, 200) << ok.body.dump();
  EXPECT_EQ(ok.body["items"][0]["reminder"]["request"]["method"], "PUT");
}

TEST_F(Requests, TheAnswersShowTheRequestWithItsSecretAsAPlaceholder) {
  const std::string request = R"({"method": "PUT", "headers": {"Authorization":
    "Bearer {{secret.api}}"}, "body": {"t": "{{payload.subject}}"}})";
  const Reply created = post("/v1/reminders", with_request(request));
  ASSERT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(created.body["request"], json::parse(request));
  const Reply read = get("/v1/reminders/" + std::to_string(created.body["id"].get<long>()));
  EXPECT_EQ(read.body["request"], json::parse(request));
  EXPECT_EQ(read.body.dump().find(kApiToken), std::string::npos);
  EXPECT_EQ(get("/v1/reminders").body.dump().find(kApiToken), std::string::npos);
}

TEST_F(Requests, ARequestCannotBeChangedByAPatch) {
  const Reply created = post("/v1/reminders", with_request(R"({"method": "DELETE"})"));
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const Reply r = patch("/v1/reminders/" + std::to_string(created.body["id"].get<long>()),
                        R"({"request": {"method": "GET"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_field(), "request");
  EXPECT_EQ(r.body["error"]["code"], "immutable_field");
}

// The PATCH changed the payload, not the request: the error names what the caller sent.
TEST_F(Requests, APatchedPayloadThatDropsWhatTheRequestReadsIsA400NamingPayload) {
  const Reply created =
      post("/v1/reminders", with_request(R"({"body": {"t": "{{payload.subject}}"}})"));
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const std::string path = "/v1/reminders/" + std::to_string(created.body["id"].get<long>());
  const Reply r = patch(path, R"({"payload": {"other": "x"}})");
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "payload") << r.body.dump();
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("request.body"), std::string::npos)
      << "it says which part of the request reads it: " << r.body.dump();
  EXPECT_EQ(get(path).body["payload"], json({{"subject", "hi"}})) << "nothing changed";
  EXPECT_EQ(patch(path, R"({"payload": {"subject": "bye"}})").status, 200);
}

TEST_F(Requests, ARuleWhoseRequestNamesAnUnknownSecretOrCannotBeSentIsA400) {
  const auto rule = [](const std::string& request) {
    return R"({"name": "r", "event_type": "e", "action": {"type": "remind", "reminder": {
      "event_type": "f", "channel": "webhook", "schedule_type": "one_time",
      "target": "https://example.com/hook", "request": )" +
           request + "}}}";
  };
  const Reply unknown =
      post("/v1/rules", rule(R"({"headers": {"Authorization": "{{secret.x}}"}})"));
  EXPECT_EQ(unknown.status, 400) << unknown.body.dump();
  EXPECT_EQ(unknown.error_field(), "action.reminder.request.headers.Authorization");
  EXPECT_EQ(unknown.body["error"]["code"], "unknown_secret");
  const Reply host = post("/v1/rules", rule(R"({"headers": {"Host": "evil.example"}})"));
  EXPECT_EQ(host.status, 400) << host.body.dump();
  EXPECT_EQ(host.error_field(), "action.reminder.request.headers.Host");
  const Reply ok = post("/v1/rules", rule(R"({"headers": {"Authorization": "{{secret.api}}"}})"));
  EXPECT_EQ(ok.status, 201) << ok.body.dump();
  const Reply changed =
      patch("/v1/rules/" + std::to_string(ok.body["id"].get<long>()),
            R"({"action": )" +
                json::parse(rule(R"({"headers": {"A": "{{secret.b}}"}})"))["action"].dump() + "}");
  EXPECT_EQ(changed.status, 400) << changed.body.dump();
  EXPECT_EQ(changed.error_field(), "action.reminder.request.headers.A");
}

}  // namespace
}  // namespace nudge::test
