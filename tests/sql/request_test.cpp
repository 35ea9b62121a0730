// A webhook reminder's own request in SQL: checked whenever it (or the payload it reads) is
// written, by any SQL caller, naming the field; rendered by the claim for each attempt with
// values escaped for the body's type; recorded per attempt with its secrets as placeholders;
// carried by rules into each reminder they create.

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using nlohmann::json;

// Values with every character JSON and forms must escape.
const std::string kAwkward = R"({"subject": "Say \"hi\"\nthen ✓ & a=b + 50% \\ done", "n": 5,
  "flag": true, "who": {"id": "U1", "tags": ["a", "b"]}})";

class RequestTest : public LifecycleTest {
 protected:
  // The named arguments of a one_time webhook reminder due now with this request and payload.
  static std::string webhook_args(const std::string& entity_id, const std::string& request,
                                  const std::string& payload = "{}",
                                  const std::string& channel = "webhook") {
    return "p_entity_type => 'user', p_entity_id => " + quoted(entity_id) +
           ", p_event_type => 'nag', p_channel => " + quoted(channel) +
           ", p_schedule_type => 'one_time', p_run_at => " + kDue + ", p_target => " +
           (channel == "log" ? "NULL" : "'https://example.com/hook'") + ", p_payload => " +
           quoted(payload) + "::jsonb, p_request => " + quoted(request) + "::jsonb";
  }
  static std::string quoted(const std::string& text) {
    std::string out = "'";
    for (const char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  }
  std::int64_t create_webhook(const std::string& entity_id, const std::string& request,
                              const std::string& payload = "{}") {
    return create(webhook_args(entity_id, request, payload)).second;
  }
  // The claimed requests by reminder id (null for a reminder without one).
  std::map<std::int64_t, json> claim_requests(const Policy& policy = {}) {
    pqxx::work tx(conn_);
    const pqxx::result rows = exec_claim(tx, "w1", 100, policy);
    tx.commit();
    std::map<std::int64_t, json> out;
    for (const auto& row : rows) {
      out[row["id"].as<std::int64_t>()] =
          row["request"].is_null() ? json() : json::parse(row["request"].as<std::string>());
    }
    return out;
  }
  // The one claimed request's body, parsed as JSON.
  json claimed_json_body(std::int64_t id) {
    const json request = claim_requests().at(id);
    EXPECT_EQ(request.value("content_type", ""), "application/json") << request.dump();
    return json::parse(request.at("body").get<std::string>());
  }
};

TEST_F(RequestTest, ARequestIsStoredAsGivenAndShownWithItsPlaceholders) {
  const std::string request = R"({"method": "PUT", "headers": {"Authorization":
    "Bearer {{secret.api}}"}, "body": {"text": "{{payload.subject}}", "none": null}})";
  const std::int64_t id = create_webhook("u1", request, kAwkward);
  const json shown = json::parse(value<std::string>(
      "SELECT nudge.reminder_json(r)::text FROM nudge.reminders r WHERE id = $1", id));
  EXPECT_EQ(shown["request"], json::parse(request)) << "nulls in the body are kept";
  EXPECT_TRUE(
      value<bool>("SELECT request = $2::jsonb FROM nudge.reminders WHERE id = $1", id, request));
  EXPECT_FALSE(json::parse(value<std::string>("SELECT nudge.reminder_json(r)::text FROM "
                                              "nudge.reminders r WHERE id = $1",
                                              create_one_time("plain")))
                   .contains("request"));
  // Its own wait for the answer goes to the worker with each attempt.
  const std::int64_t patient = create_webhook("u2", R"({"timeout_ms": 90000})", kAwkward);
  EXPECT_EQ(value<std::string>("SELECT nudge.rendered_request(r, now(), 1)::text "
                               "FROM nudge.reminders r WHERE id = $1",
                               patient),
            R"({"method": "POST", "headers": {}, "timeout_ms": 90000})");
}

struct Refusal {
  std::string request;
  std::string field;    // the message starts with "<field>: "
  std::string problem;  // and holds this
  std::string channel = "webhook";
};

TEST_F(RequestTest, EveryRequestThatCannotBeSentIsRefusedNamingTheField) {
  const std::string many = [] {
    std::string headers;
    for (int i = 0; i < 21; ++i)
      headers += (i ? ", " : "") + ("\"X-" + std::to_string(i) + "\": \"v\"");
    return "{\"headers\": {" + headers + "}}";
  }();
  const std::string big_body =
      R"({"body": ")" + std::string(16385, 'x') + R"(", "content_type": "text/plain"})";
  const std::vector<Refusal> cases = {
      {R"([1])", "request", "must be a JSON object"},
      {R"({"body": {"a": 1}})", "request", "is only for webhook reminders", "log"},
      {R"({"metod": "GET"})", "request.metod", "is not a known field"},
      {R"({"method": "get"})", "request.method", "POST, PUT, PATCH, GET, DELETE"},
      {R"({"method": "HEAD"})", "request.method", "POST, PUT, PATCH, GET, DELETE"},
      {R"({"timeout_ms": 0})", "request.timeout_ms", "from 1 to 600000"},
      {R"({"timeout_ms": 600001})", "request.timeout_ms", "from 1 to 600000"},
      {R"({"timeout_ms": 1.5})", "request.timeout_ms", "whole number of milliseconds"},
      {R"({"timeout_ms": "5000"})", "request.timeout_ms", "whole number of milliseconds"},
      {R"({"timeout_ms": null})", "request.timeout_ms", "whole number of milliseconds"},
      {R"({"headers": ["A: b"]})", "request.headers", "JSON object"},
      {many, "request.headers", "at most 20 headers"},
      // Injection: a line break in a name or a value.
      {R"({"headers": {"X-A\r\nHost: evil": "a"}})", "request.headers",
       R"("X-A\r\nHost: evil" is not a header name)"},
      {R"({"headers": {"X-A": "a\r\nHost: evil"}})", "request.headers.X-A", "line breaks"},
      {R"({"headers": {"X-A": "a\nb"}})", "request.headers.X-A", "line breaks"},
      {R"({"headers": {"X-A": "a\u0007"}})", "request.headers.X-A", "control characters"},
      {R"({"headers": {"X A": "a"}})", "request.headers", "is not a header name"},
      {R"({"headers": {"": "a"}})", "request.headers", "is not a header name"},
      {R"({"headers": {"Host": "a"}})", "request.headers.Host", "is set by Nudge"},
      {R"({"headers": {"content-length": "1"}})", "request.headers.content-length", "set by Nudge"},
      {R"({"headers": {"Transfer-Encoding": "chunked"}})", "request.headers.Transfer-Encoding",
       "set by Nudge"},
      {R"({"headers": {"CONNECTION": "close"}})", "request.headers.CONNECTION", "set by Nudge"},
      {R"({"headers": {"Idempotency-Key": "k"}})", "request.headers.Idempotency-Key",
       "set by Nudge"},
      {R"({"headers": {"Nudge-Signature": "x"}})", "request.headers.Nudge-Signature",
       "set by Nudge"},
      {R"({"headers": {"nudge-anything": "x"}})", "request.headers.nudge-anything", "set by Nudge"},
      {R"({"headers": {"Content-Type": "text/plain"}})", "request.headers.Content-Type",
       "request.content_type"},
      {R"({"headers": {"X-A": "1", "x-a": "2"}})", "request.headers.x-a", "given twice"},
      {R"({"headers": {"X-A": 1}})", "request.headers.X-A", "must be a string"},
      {R"({"headers": {"X-A": ")" + std::string(2049, 'v') + R"("}})", "request.headers.X-A",
       "at most 2048 characters"},
      {R"({"headers": {"X-A": "{{payload.x}}"}})", "request.headers.X-A",
       "cannot be used in a header"},
      {R"({"headers": {"X-A": "{{secret.Slack}}"}})", "request.headers.X-A",
       "cannot be used in a header"},
      {R"({"headers": {"X-A": "Bearer {{secret.api"}})", "request.headers.X-A", "does not close"},
      {R"({"method": "GET", "body": {"a": 1}})", "request.body", "GET and DELETE send no body"},
      {R"({"method": "DELETE", "body": "x", "content_type": "text/plain"})", "request.body",
       "GET and DELETE send no body"},
      {R"({"body": null})", "request.body", "JSON template or a string"},
      {big_body, "request.body", "at most 16 KiB"},
      {R"({"body": "x"})", "request.content_type", "is required with a string body"},
      {R"({"body": {"a": 1}, "content_type": "text/plain"})", "request.content_type",
       "must be a JSON type"},
      {R"({"content_type": "text/plain"})", "request.content_type",
       "only for a request with a body"},
      {R"({"body": "x", "content_type": "text"})", "request.content_type", "media type"},
      {R"({"body": "x", "content_type": "text/plain\r\nX: y"})", "request.content_type",
       "media type"},
      {R"({"body": {"a": "{{nope}}"}})", "request.body", "{{nope}} is not a placeholder"},
      // every known one is listed, {{payload}} (the whole payload) included
      {R"({"body": {"a": "{{nope}}"}})", "request.body",
       "(known: {{entity_type}}, {{entity_id}}, {{event_type}}, {{reminder_id}}, "
       "{{scheduled_for}}, {{attempt}}, {{payload}}, {{payload.some.path}};"},
      {R"({"body": {"a": "{{data.x}}"}})", "request.body", "through the payload"},
      {R"({"body": {"a": "{{secret.api}}"}})", "request.body", "only be used in header values"},
      {R"({"body": {"a": "{{payload.missing}}"}})", "request.body",
       "the payload has no missing for {{payload.missing}}"},
      {R"({"body": "{{payload.who.name}}", "content_type": "text/plain"})", "request.body",
       "the payload has no who.name"},
      {R"({"body": {"a": "{{payload.n"}})", "request.body", "does not close"},
      {R"({"body": {"a": "{{{payload.n}}}"}})", "request.body", "three braces"},
      {R"({"body": {"{{payload.n}}": 1}})", "request.body", "keys cannot hold"},
      // A value written as text into JSON could end its string and add keys.
      {R"({"body": "{\"text\": \"{{payload.n}}\"}", "content_type": "application/json"})",
       "request.body", "give the body as JSON (an object or array)"},
      {R"({"body": "{\"t\": {{payload.n}}}", "content_type": "Application/vnd.api+JSON; charset=utf-8"})",
       "request.body", "give the body as JSON"},
      // Every type a receiver reads as JSON (explore29a LOW 7: text/json took data as text).
      {R"({"body": "{\"t\": \"{{payload.n}}\"}", "content_type": "text/json"})", "request.body",
       "give the body as JSON"},
      {R"({"body": "{\"t\": \"{{payload.n}}\"}", "content_type": "application/x-json"})",
       "request.body", "give the body as JSON"},
      {R"({"body": "{\"t\": \"{{payload.n}}\"}", "content_type": "application/x-ndjson"})",
       "request.body", "give the body as JSON"},
  };
  for (const Refusal& c : cases) {
    SCOPED_TRACE(c.request.substr(0, 200));
    const SqlFailure f = failure_of("SELECT * FROM nudge.create_reminder(" +
                                    webhook_args("u1", c.request, kAwkward, c.channel) + ")");
    EXPECT_EQ(f.sqlstate, "22023") << f.message;
    EXPECT_EQ(f.message.rfind(c.field + ": ", 0), 0u) << f.message;
    EXPECT_NE(f.message.find(c.problem), std::string::npos) << f.message;
  }
  EXPECT_EQ(count("nudge.reminders"), 0);
}

TEST_F(RequestTest, EveryMethodAndTheEdgesOfEachLimitAreAccepted) {
  std::string twenty;
  for (int i = 0; i < 20; ++i)
    twenty += (i ? ", " : "") + ("\"X-" + std::to_string(i) + "\": \"v\"");
  const std::vector<std::string> good = {
      R"({"method": "POST", "body": {"a": 1}})",
      R"({"method": "PUT", "body": "x", "content_type": "text/plain; charset=utf-8"})",
      R"({"body": "{\"fixed\": true}", "content_type": "application/json"})",
      R"({"method": "PATCH", "body": [1, "{{payload.n}}"], "content_type": "application/merge-patch+json"})",
      R"({"method": "GET", "headers": {"Accept": "application/json"}})",
      R"({"method": "DELETE"})",
      R"({"method": "POST"})",
      "{\"headers\": {" + twenty + "}}",
      R"({"headers": {"X-Tab": "a\tb", "X-Empty": "", "!#$%&'*+.^_`|~": "token chars"}})",
      R"({"headers": {"Authorization": "{{ secret.a_1 }}:{{secret.b}}"}})",
      R"({"body": ")" + std::string(16384, 'x') + R"(", "content_type": "text/plain"})",
      R"({"body": {"all": "{{payload}}", "id": "{{reminder_id}}", "at": "{{scheduled_for}}",
          "try": "{{attempt}}", "who": "{{entity_type}}/{{entity_id}}/{{event_type}}",
          "deep": "{{payload.who.tags.1}}", "brace": "{a} }b{"}})",
  };
  for (std::size_t i = 0; i < good.size(); ++i) {
    SCOPED_TRACE(good[i].substr(0, 200));
    EXPECT_TRUE(create(webhook_args("u" + std::to_string(i), good[i], kAwkward)).first);
  }
}

TEST_F(RequestTest, AnInsertOrUpdateByHandIsCheckedToo) {
  const SqlFailure insert = failure_of(
      "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, target, "
      "schedule_type, next_run_at, request) VALUES ('u', '1', 'e', 'webhook', 'https://x.example', "
      "'one_time', now(), '{\"headers\": {\"Host\": \"evil\"}}')");
  EXPECT_EQ(insert.sqlstate, "22023");
  EXPECT_EQ(insert.message, "request.headers.Host: is set by Nudge and cannot be given");
  const std::int64_t id = create_webhook("u1", R"({"body": {"a": 1}})");
  const SqlFailure update = failure_of(
      "UPDATE nudge.reminders SET request = '{\"method\": \"GET\", \"body\": {\"a\": 1}}' "
      "WHERE id = $1",
      id);
  EXPECT_EQ(update.sqlstate, "22023");
  EXPECT_EQ(update.message.rfind("request.body: ", 0), 0u) << update.message;
}

// A bad request is refused whatever exists: it was checked only as a row was written, so a
// create answered the live reminder of its identity instead (and a 400 without one).
TEST_F(RequestTest, ACreateWithABadRequestIsRefusedAlsoWhenItsIdentityIsLive) {
  const std::int64_t live =
      create_webhook("u1", R"({"body": {"t": "{{payload.subject}}"}})", kAwkward);
  const SqlFailure f =
      failure_of("SELECT * FROM nudge.create_reminder(" +
                 webhook_args("u1", R"({"body": {"t": "{{payload.missing}}"}})") + ")");
  EXPECT_EQ(f.sqlstate, "22023");
  EXPECT_EQ(f.message.rfind("request.body: the payload has no missing", 0), 0u) << f.message;
  EXPECT_EQ(create(webhook_args("u1", R"({"body": {"t": "{{payload.subject}}"}})", kAwkward)),
            std::make_pair(false, live))
      << "a good one still answers the live reminder";
}

TEST_F(RequestTest, APayloadChangeThatDropsAValueTheBodyReadsIsRefused) {
  const std::int64_t id =
      create_webhook("u1", R"({"body": {"t": "{{payload.subject}}"}})", kAwkward);
  const SqlFailure f =
      failure_of("SELECT nudge.reschedule_reminder($1, p_payload => '{\"n\": 1}')", id);
  EXPECT_EQ(f.sqlstate, "22023");
  // The call changed the payload, not the request: the error names the payload.
  EXPECT_EQ(f.message,
            "payload: the payload has no subject for {{payload.subject}} (read by the reminder's "
            "request.body)");
  sql("SELECT nudge.reschedule_reminder($1, p_payload => '{\"subject\": \"new\"}')", id);
  EXPECT_EQ(claimed_json_body(id), json::parse(R"({"t": "new"})"));
}

// "Hi null!" is not what anyone meant to send: a null is refused in text, as a rule refuses it,
// and kept as JSON null where a JSON body's string is that placeholder alone.
TEST_F(RequestTest, ANullInTextIsRefusedAndAWholeValueKeepsIt) {
  const std::string with_null = R"({"subject": "s", "n": null})";
  for (const auto& [request, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"body": {"t": "Hi {{payload.n}}!"}})", "request.body"},
           {R"({"body": "n={{payload.n}}", "content_type": "application/x-www-form-urlencoded"})",
            "request.body"}}) {
    SCOPED_TRACE(request);
    const SqlFailure f = failure_of("SELECT * FROM nudge.create_reminder(" +
                                    webhook_args("u1", request, with_null) + ")");
    EXPECT_EQ(f.sqlstate, "22023");
    EXPECT_EQ(f.message.rfind(field + ": the payload's n is null, which cannot be put in text", 0),
              0u)
        << f.message;
  }
  const std::int64_t whole = create_webhook("u1", R"({"body": {"n": "{{payload.n}}"}})", with_null);
  EXPECT_EQ(claimed_json_body(whole), json::parse(R"({"n": null})"));
  // A payload changed to hold a null where the body puts it in text is refused too.
  const std::int64_t text =
      create_webhook("u2", R"({"body": {"t": "Hi {{payload.n}}!"}})", kAwkward);
  const SqlFailure f =
      failure_of("SELECT nudge.reschedule_reminder($1, p_payload => $2::jsonb)", text, with_null);
  EXPECT_EQ(f.sqlstate, "22023");
  EXPECT_NE(f.message.find("the payload's n is null"), std::string::npos) << f.message;
}

TEST_F(RequestTest, TheClaimRendersAJsonBodyWithValuesEscapedAndWholePlaceholdersTyped) {
  const std::int64_t id = create_webhook(
      "u1", R"({"body": {"text": "Reminder: {{payload.subject}}", "n": "{{payload.n}}",
        "flag": "{{ payload.flag }}", "who": "{{payload.who}}", "tag": "#{{payload.who.tags.0}}",
        "said": "\"{{payload.n}}\"", "reminder": "{{reminder_id}}", "attempt": "{{attempt}}",
        "at": "{{scheduled_for}}", "entity": "{{entity_type}}:{{entity_id}}:{{event_type}}"}})",
      kAwkward);
  const std::string due_at = value<std::string>(
      "SELECT nudge.rfc3339_in_zone(next_run_at, 'UTC') FROM nudge.reminders WHERE id = $1", id);
  const json body = claimed_json_body(id);
  const json payload = json::parse(kAwkward);
  EXPECT_EQ(body["text"], "Reminder: " + payload["subject"].get<std::string>());
  EXPECT_EQ(body["n"], 5);
  EXPECT_EQ(body["flag"], true);
  EXPECT_EQ(body["who"], payload["who"]);
  EXPECT_EQ(body["tag"], "#a");
  EXPECT_EQ(body["said"], "\"5\"") << "a value inside quotes is text";
  EXPECT_EQ(body["reminder"], id);
  EXPECT_EQ(body["attempt"], 1);
  EXPECT_EQ(body["at"], due_at);
  EXPECT_EQ(due_at.substr(due_at.size() - 6), "+00:00");
  EXPECT_EQ(body["entity"], "user:u1:nag");
}

TEST_F(RequestTest, TheClaimFormEncodesTheValuesOfAFormBody) {
  const std::int64_t id =
      create_webhook("u1", R"({"body": "To=%2B15551234567&Body={{payload.subject}}&N={{payload.n}}",
        "content_type": "application/x-www-form-urlencoded; charset=utf-8"})",
                     kAwkward);
  const json request = claim_requests().at(id);
  EXPECT_EQ(request["content_type"], "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_EQ(
      request["body"],
      "To=%2B15551234567&Body=Say+%22hi%22%0Athen+%E2%9C%93+%26+a%3Db+%2B+50%25+%5C+done&N=5");
}

// A payload at its 64 KiB limit, used by a body many times: the claim renders the form body
// whole (it took 45 s once, past the lease, and the claim's other rows were claimed again and
// again), and a body that would pass 1 MiB is an error of its own attempt, not a body built first.
TEST_F(RequestTest, TheClaimRendersLargeBodiesAndRefusesOnesPastOneMebibyte) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "Feedback bitte – é ";
  const std::string payload = json{{"text", text}}.dump();
  const std::int64_t form =
      create_webhook("form", R"({"body": "Body={{payload.text}}&Copy={{payload.text}}",
        "content_type": "application/x-www-form-urlencoded"})",
                     payload);
  const std::int64_t huge = create_webhook("huge",
                                           json{{"body",
                                                 [] {
                                                   std::string body;
                                                   for (int i = 0; i < 40; ++i)
                                                     body += "{{payload.text}} ";
                                                   return body;
                                                 }()},
                                                {"content_type", "text/plain"}}
                                               .dump(),
                                           payload);
  const auto requests = claim_requests();
  std::string encoded;
  for (int i = 0; i < 2000; ++i) encoded += "Feedback+bitte+%E2%80%93+%C3%A9+";
  EXPECT_EQ(requests.at(form)["body"], "Body=" + encoded + "&Copy=" + encoded);
  EXPECT_EQ(requests.at(huge)["error"], "request.body: renders to more than 1 MiB");
  EXPECT_FALSE(requests.at(huge).contains("body"));
}

TEST_F(RequestTest, TheClaimInsertsValuesAsTextInOtherStringBodies) {
  const std::int64_t id = create_webhook(
      "u1", R"({"method": "PUT", "body": "<b>{{payload.subject}}</b> {{payload.who}} #{{attempt}}",
        "content_type": "text/html"})",
      kAwkward);
  const json request = claim_requests().at(id);
  EXPECT_EQ(request["method"], "PUT");
  // An object goes in as PostgreSQL writes JSON.
  EXPECT_EQ(request["body"], "<b>" + json::parse(kAwkward)["subject"].get<std::string>() +
                                 "</b> {\"id\": \"U1\", \"tags\": [\"a\", \"b\"]} #1");
}

TEST_F(RequestTest, TheClaimLeavesSecretsAsPlaceholdersAndGivesMethodAndHeadersWithoutABody) {
  const std::int64_t get = create_webhook(
      "u1", R"({"method": "GET", "headers": {"Authorization": "Bearer {{secret.api}}"}})");
  const std::int64_t plain = create_one_time("plain");
  const auto requests = claim_requests();
  EXPECT_EQ(requests.at(get), json::parse(R"({"method": "GET",
    "headers": {"Authorization": "Bearer {{secret.api}}"}})"));
  EXPECT_TRUE(requests.at(plain).is_null());
}

TEST_F(RequestTest, EachAttemptRendersItsOwnNumberAndIsRecordedWithItsRequest) {
  const std::int64_t id =
      create_webhook("u1", R"({"headers": {"Authorization": "Bearer {{secret.api}}"},
        "body": {"attempt": "{{attempt}}", "long": "{{payload.long}}"}})",
                     R"({"long": ")" + std::string(2000, 'l') + R"("})");
  Policy fast;
  fast.retry_base_ms = 1;
  fast.retry_max_ms = 1;
  auto first = finish_and_claim("w1", {}, 10);
  ASSERT_EQ(first.size(), 1u);
  std::vector<Claimed> second;
  round("w1", finish_arrays(first, "failed", "HTTP 500"), 0, fast);
  ASSERT_TRUE(wait_until(std::chrono::seconds(10), [&] {
    pqxx::work tx(conn_);
    const pqxx::result rows = exec_claim(tx, "w1", 10, fast);
    tx.commit();
    if (rows.empty()) return false;
    EXPECT_EQ(json::parse(json::parse(rows[0]["request"].as<std::string>())["body"]
                              .get<std::string>())["attempt"],
              2);
    second = to_claimed(rows);
    return true;
  }));
  ASSERT_EQ(finish("w1", second), 1);

  const pqxx::result attempts =
      sql("SELECT attempt, request::text FROM nudge.delivery_attempts WHERE reminder_id = $1 "
          "ORDER BY attempt",
          id);
  ASSERT_EQ(attempts.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const json recorded = json::parse(attempts[i][1].as<std::string>());
    EXPECT_EQ(recorded["method"], "POST");
    EXPECT_EQ(recorded["headers"]["Authorization"], "Bearer {{secret.api}}");
    EXPECT_EQ(recorded["content_type"], "application/json");
    const std::string body = recorded["body"];
    EXPECT_EQ(body.size(), 1024u) << "the first KiB of the body";
    EXPECT_EQ(body.rfind("{\"long\": \"lll", 0), 0u) << body.substr(0, 40);
  }
  const json shown = json::parse(value<std::string>(
      "SELECT nudge.execution_json(e)::text FROM nudge.executions e WHERE reminder_id = $1", id));
  EXPECT_EQ(shown["delivery_attempts"][1]["request"]["headers"]["Authorization"],
            "Bearer {{secret.api}}");
}

TEST_F(RequestTest, AttemptsOfRemindersWithoutARequestRecordNone) {
  sql("SELECT nudge.create_reminder('user', 'u1', 'nag', 'webhook', 'one_time', now(), "
      "p_target => 'https://example.com/hook')");
  const auto fires = claim("w1");
  ASSERT_EQ(finish("w1", fires, "failed", "HTTP 500"), 1);
  EXPECT_EQ(count("nudge.delivery_attempts WHERE request IS NULL"), 1);
}

TEST_F(RequestTest, ABatchCreatesRequestsSetWiseAndNamesTheItemOfABadOne) {
  const std::string good = R"({"entity_type": "user", "entity_id": "%", "event_type": "nag",
    "channel": "webhook", "schedule_type": "one_time", "run_at": "2030-01-01T00:00:00Z",
    "target": "https://example.com/hook", "payload": {"s": "x"},
    "request": {"method": "PATCH", "body": {"s": "{{payload.s}}"}}})";
  const auto item = [&](const std::string& id) {
    std::string text = good;
    return text.replace(text.find('%'), 1, id);
  };
  const pqxx::result made =
      sql("SELECT item, (reminder).request::text FROM nudge.create_reminders($1::jsonb)",
          "[" + item("a") + "," + item("b") + "]");
  ASSERT_EQ(made.size(), 2u);
  EXPECT_EQ(json::parse(made[1][1].as<std::string>())["method"], "PATCH");
  std::string bad = item("c");
  bad.replace(bad.find("PATCH"), 5, "GET");
  const SqlFailure f = failure_of("SELECT * FROM nudge.create_reminders($1::jsonb)",
                                  "[" + item("d") + "," + bad + "]");
  EXPECT_EQ(f.sqlstate, "22023");
  EXPECT_EQ(f.message.rfind("items[1].request.body: ", 0), 0u) << f.message;
  EXPECT_EQ(count("nudge.reminders"), 2);
}

// A rule's template carries the request into each reminder as it is: its placeholders are the
// reminder's, and event values reach it through the payload.
const std::string kSlackRule = R"json({"type": "remind", "reminder": {"event_type": "feedback_form",
  "channel": "webhook", "schedule_type": "one_time", "target": "https://hooks.example/T1",
  "payload": {"subject": "{{data.subject}}"},
  "request": {"headers": {"Authorization": "Bearer {{secret.slack}}"},
              "body": {"text": "Reminder: {{payload.subject}} ({{entity_id}})"}}}})json";

TEST_F(RequestTest, ARuleCarriesItsRequestIntoTheRemindersOfOneEventAndOfABatch) {
  sql("SELECT nudge.create_rule('slack', 'interview_completed', $1::jsonb)", kSlackRule);
  sql("SELECT nudge.emit_event('interview_completed', 'interviewer', 'INT_1', "
      "'{\"subject\": \"C-7 \\\"quoted\\\"\"}')");
  sql("SELECT nudge.emit_events($1::jsonb)",
      R"([{"event_type": "interview_completed", "entity_type": "interviewer",
           "entity_id": "INT_2", "data": {"subject": "C-8"}},
          {"event_type": "interview_completed", "entity_type": "interviewer",
           "entity_id": "INT_3", "data": {"subject": "C-9"}}])");
  const json stored = json::parse(kSlackRule)["reminder"]["request"];
  EXPECT_EQ(count("nudge.reminders WHERE request = '" + stored.dump() + "'::jsonb"), 3);
  const auto requests = claim_requests();
  std::set<std::string> texts;
  for (const auto& [id, request] : requests) {
    EXPECT_EQ(request["headers"]["Authorization"], "Bearer {{secret.slack}}");
    texts.insert(json::parse(request["body"].get<std::string>())["text"]);
  }
  EXPECT_EQ(texts, (std::set<std::string>{"Reminder: C-7 \"quoted\" (INT_1)",
                                          "Reminder: C-8 (INT_2)", "Reminder: C-9 (INT_3)"}));
}

TEST_F(RequestTest, ARuleWhoseRequestCannotBeSentIsRefusedWhenSavedNamingTheField) {
  const std::string start = R"({"type": "remind", "reminder": {"event_type": "f",
    "channel": "webhook", "schedule_type": "one_time", "target": "https://x.example",
    "payload": {"subject": "{{data.subject}}"}, "request": )";
  const struct {
    std::string request;
    std::string field;
  } cases[] = {
      {R"({"headers": {"Host": "evil"}})", "action.reminder.request.headers.Host"},
      {R"({"headers": {"X-A": "{{data.subject}}"}})", "action.reminder.request.headers.X-A"},
      {R"({"body": {"t": "{{data.subject}}"}})", "action.reminder.request.body"},
      {R"({"body": {"t": "{{payload.other}}"}})", "action.reminder.request.body"},
      {R"({"method": "GET", "body": "x", "content_type": "text/plain"})",
       "action.reminder.request.body"},
      {R"("PUT")", "action.reminder.request"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.request);
    const SqlFailure f =
        failure_of("SELECT nudge.create_rule('r', 'e', $1::jsonb)", start + c.request + "}}");
    EXPECT_EQ(f.sqlstate, "22023") << f.message;
    EXPECT_EQ(f.message.rfind(c.field + ": ", 0), 0u) << f.message;
  }
  EXPECT_EQ(count("nudge.rules"), 0);
}

}  // namespace
}  // namespace nudge::test
