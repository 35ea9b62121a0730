// Connections over raw sockets: idle keep-alive clients cost no request thread, the connection
// limit answers 503 at once (and the metrics count it), a request without Content-Length has an
// empty body, keep-alive and pipelining keep their order, slow, stalled and oversized requests
// (deadlines, 408, 431, no body read without a token), and SIGTERM with connections open.

#include <signal.h>

#include <thread>

#include "api/api_fixture.hpp"
#include "support/prometheus_text.hpp"
#include "support/raw_http.hpp"

namespace nudge::test {
namespace {

const std::string kHealth = raw_request("GET", "/health");
// Far below the 5 s an idle connection held a request thread for before.
constexpr auto kPrompt = 1000ms;

std::string create_body(const std::string& entity_id) {
  return R"({"entity_type":"user","entity_id":")" + entity_id +
         R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
         R"("run_at":"2099-01-01T00:00:00Z"})";
}

int status_of(const std::optional<RawResponse>& r) {
  return r ? r->status : 0;
}

json body_of(const std::optional<RawResponse>& r) {
  return r ? json::parse(r->body, nullptr, false) : json();
}

std::chrono::milliseconds since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

using Connections = ApiTest;

TEST_F(Connections, ThreeHundredIdleKeepAliveClientsDoNotDelayANewOne) {
  std::vector<RawConnection> idle;
  for (int i = 0; i < 300; ++i) {
    idle.emplace_back(port_);
    ASSERT_TRUE(idle.back().send(kHealth)) << i;
  }
  for (auto& c : idle) {
    const auto r = c.read_response(10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->header("Connection"), "close");
  }
  // All 300 stay open and idle; newcomers are answered at once, database routes included.
  RawConnection fresh(port_);
  const auto start = std::chrono::steady_clock::now();
  const auto health = fresh.request(kHealth, kPrompt);
  ASSERT_TRUE(health) << "no answer within " << kPrompt.count() << " ms";
  EXPECT_EQ(health->status, 200);
  const auto created = RawConnection(port_).request(
      raw_request("POST", "/v1/reminders", create_body("new")), kPrompt);
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  EXPECT_LT(since(start), kPrompt);
  // The idle connections still serve their clients.
  for (auto& c : idle) {
    const auto again = c.request(kHealth, 10s);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
  }
}

class LimitedConnections : public ApiTest {
 protected:
  LimitedConnections() : ApiTest({{"NUDGE_API_MAX_CONNECTIONS", "3"}}) {}

  // A connection the server has taken and answered on (the fixture's own client may still
  // hold a slot for a moment after its last answer).
  RawConnection served_connection() {
    std::optional<RawConnection> served;
    EXPECT_TRUE(wait_until(5s, [&] {
      RawConnection c(port_);
      const auto r = c.request(kHealth, 5s);
      if (r && r->status == 200) served.emplace(std::move(c));
      return served.has_value();
    }));
    return served ? std::move(*served) : RawConnection(port_);
  }
};

TEST_F(LimitedConnections, AClientPastTheLimitGetsA503AtOnceAndAFreedSlotIsUsedAgain) {
  std::vector<RawConnection> held;
  for (int i = 0; i < 3; ++i) held.push_back(served_connection());

  RawConnection extra(port_);
  ASSERT_TRUE(extra.connected()) << "past the limit the connection is still accepted";
  const auto start = std::chrono::steady_clock::now();
  const auto refused = extra.request(kHealth, kPrompt);
  ASSERT_TRUE(refused) << "no answer within " << kPrompt.count() << " ms";
  EXPECT_LT(since(start), kPrompt);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->header("Connection"), "close");
  EXPECT_EQ(refused->header("Retry-After"), "1");
  EXPECT_EQ(refused->header("Content-Type"), "application/json");
  const json error = body_of(refused);
  EXPECT_EQ(error["error"]["code"], "unavailable") << refused->body;
  EXPECT_TRUE(error["error"]["message"].is_string());
  EXPECT_TRUE(error["error"]["field"].is_null());
  EXPECT_TRUE(extra.closed_by_server(kPrompt));

  // The held connections are unaffected; closing one lets a new client in.
  EXPECT_EQ(status_of(held[0].request(kHealth, 5s)), 200);
  held.pop_back();
  held.push_back(served_connection());
  EXPECT_EQ(status_of(held.back().request(kHealth, 5s)), 200);
  EXPECT_TRUE(api_->running());
}

TEST_F(LimitedConnections, RefusedClientsAndOpenConnectionsAreInTheMetrics) {
  std::vector<RawConnection> held;
  for (int i = 0; i < 3; ++i) held.push_back(served_connection());
  // Getting the three slots may itself have been refused while an earlier connection (the
  // fixture's readiness check) was still closing: count from here.
  const auto before = held[0].request(raw_request("GET", "/metrics"), 5s);
  ASSERT_TRUE(before);
  const auto refused_before = sample_value(before->body, "nudge_api_connections_refused_total");
  ASSERT_TRUE(refused_before);
  for (int i = 0; i < 2; ++i) {
    RawConnection extra(port_);
    EXPECT_EQ(status_of(extra.request(kHealth, kPrompt)), 503);
  }
  const auto metrics = held[0].request(raw_request("GET", "/metrics"), 5s);
  ASSERT_TRUE(metrics);
  EXPECT_EQ(sample_value(metrics->body, "nudge_api_connections_refused_total"),
            *refused_before + 2);
  EXPECT_EQ(sample_value(metrics->body, "nudge_api_connections_open"), 3);
  EXPECT_EQ(sample_value(metrics->body, "nudge_api_connections_limit"), 3);
}

TEST_F(Connections, RequestsWithoutContentLengthHaveAnEmptyBody) {
  const std::string r = "/v1/reminders/" + std::to_string(create_one("bodiless"));
  RawConnection c(port_);
  // The routes that take no body just work, on one connection, one after another.
  const std::vector<std::pair<std::string, std::string>> kNoBody = {
      {r + "/pause", "PAUSED"}, {r + "/resume", "ACTIVE"}, {r + "/cancel", "CANCELLED"}};
  for (const auto& [path, status] : kNoBody) {
    SCOPED_TRACE(path);
    const auto start = std::chrono::steady_clock::now();
    const auto answer = c.request("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 5s);
    ASSERT_TRUE(answer);
    EXPECT_LT(since(start), kPrompt);
    EXPECT_EQ(answer->status, 200) << answer->body;
    EXPECT_EQ(body_of(answer)["status"], status);
  }
  const auto deleted =
      c.request("DELETE /v1/contacts/user/1/email HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 5s);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->status, 404) << deleted->body;  // no such contact: read, not waited for

  // The routes that need a body say it is missing.
  const std::vector<std::pair<std::string, std::string>> kNeedBody = {
      {"POST", "/v1/reminders"},
      {"POST", "/v1/reminders/batch"},
      {"PATCH", r},
      {"POST", "/v1/schedules/preview"},
      {"POST", "/v1/schedules/parse"},
      {"PUT", "/v1/flags/some-flag"},
      {"PUT", "/v1/contacts/user/1/email"}};
  for (const auto& [method, path] : kNeedBody) {
    SCOPED_TRACE(method + " " + path);
    const auto start = std::chrono::steady_clock::now();
    const auto answer = c.request(method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 5s);
    ASSERT_TRUE(answer);
    EXPECT_LT(since(start), kPrompt);
    EXPECT_EQ(answer->status, 400) << answer->body;
    EXPECT_EQ(body_of(answer)["error"]["field"], "body") << answer->body;
    EXPECT_EQ(body_of(answer)["error"]["code"], "missing_field") << answer->body;
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
}

TEST_F(Connections, OneConnectionServesManyRequestsInTurn) {
  RawConnection c(port_);
  for (int i = 0; i < 20; ++i) {
    const auto answer = c.request(kHealth, 5s);
    ASSERT_TRUE(answer) << i;
    EXPECT_EQ(answer->status, 200);
    EXPECT_NE(answer->header("Connection"), "close");
    EXPECT_EQ(answer->header("Keep-Alive"), "timeout=5, max=1000");
  }
  const auto created = c.request(raw_request("POST", "/v1/reminders", create_body("k")), 5s);
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  const auto id = body_of(created)["id"].get<long>();
  const auto read = c.request(raw_request("GET", "/v1/reminders/" + std::to_string(id)), 5s);
  ASSERT_TRUE(read);
  EXPECT_EQ(body_of(read)["entity_id"], "k");
  // A client that says so gets its connection closed after the answer.
  const auto last =
      c.request(raw_request("GET", "/health", std::nullopt, "Connection: close\r\n"), 5s);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->header("Connection"), "close");
  EXPECT_TRUE(c.closed_by_server(kPrompt));
}

TEST_F(Connections, PipelinedRequestsAreAnsweredInOrder) {
  const std::string r = "/v1/reminders/" + std::to_string(create_one("piped"));
  RawConnection c(port_);
  // All in one write: bodiless POSTs between reads, a 404, and a create with a body.
  ASSERT_TRUE(c.send("POST " + r + "/pause HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
                     raw_request("GET", r) + "POST " + r +
                     "/resume HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + raw_request("GET", r) +
                     raw_request("GET", "/v1/nothing-here") +
                     raw_request("POST", "/v1/reminders", create_body("second"))));
  const std::vector<std::pair<int, std::string>> kExpected = {
      {200, "PAUSED"}, {200, "PAUSED"}, {200, "ACTIVE"}, {200, "ACTIVE"}, {404, ""}, {201, ""}};
  for (std::size_t i = 0; i < kExpected.size(); ++i) {
    SCOPED_TRACE(i);
    const auto answer = c.read_response(5s);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, kExpected[i].first) << answer->body;
    if (!kExpected[i].second.empty()) {
      EXPECT_EQ(body_of(answer)["status"], kExpected[i].second);
    }
  }
  EXPECT_EQ(body_of(c.request(kHealth, 5s))["status"], "ok");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 2);
}

// httplib answered a method it does not know (PROPFIND, get) 400 "a header line is at most
// 8 KiB", TRACE and CONNECT 400 and OPTIONS 404, on a path that exists (explore14a #3).
// Connection options are case-insensitive and come as a list (RFC 9110 7.6.1): "Close" and
// "keep-alive, close" close as "close" does (they kept the connection open 5 s: explore15b #2).
TEST_F(Connections, ConnectionCloseInAnyCaseOrListClosesAfterTheAnswer) {
  for (const std::string option : {"close", "Close", "CLOSE", "keep-alive, close", "TE, close"}) {
    RawConnection c(port_);
    const auto r = c.request(
        "GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: " + option + "\r\n\r\n", 5s);
    ASSERT_TRUE(r) << option;
    EXPECT_EQ(r->status, 200) << option;
    EXPECT_EQ(r->header("Connection"), "close") << option;
    EXPECT_TRUE(c.closed_by_server(1s)) << option;
  }
}

// A Range is ignored: answers are whole, never cut to it under a 200 (broken JSON, a create's
// answer cut to '{"': explore15b #3); and each says it varies with Accept-Encoding (#5).
TEST_F(Connections, ARangeIsIgnoredAndAnswersVaryWithAcceptEncoding) {
  RawConnection c(port_);
  const auto list = c.request(
      "GET /v1/flags?limit=2 HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\n\r\n", 5s);
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  EXPECT_EQ(list->header("Content-Range"), "");
  EXPECT_TRUE(json::parse(list->body, nullptr, false).is_object()) << list->body;
  EXPECT_EQ(list->header("Vary"), "Accept-Encoding");
  const std::string body = R"({"value": true})";
  const auto put = c.request(
      "PUT /v1/flags/ranged HTTP/1.1\r\nHost: localhost\r\nRange: "
      "bytes=0-1\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body,
      5s);
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 200);
  EXPECT_EQ(json::parse(put->body, nullptr, false)["key"], "ranged") << put->body;
}

// A multipart Content-Type on a request without a body refuses nothing: a client's stale
// default header failed its GETs and probes with 415 (explore15b #1).
TEST_F(Connections, AMultipartTypeWithoutABodyIsNoRefusal) {
  for (const std::string path : {"/livez", "/v1/flags"}) {
    RawConnection c(port_);
    const auto r = c.request("GET " + path +
                                 " HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                                 "multipart/form-data; boundary=x\r\n\r\n",
                             5s);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path << " " << r->body;
  }
  // Nor on a DELETE without a body (httplib parsed an empty multipart body: a 400).
  RawConnection c(port_);
  const auto r = c.request(
      "DELETE /v1/rules/99999 HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
      "multipart/form-data; boundary=x\r\n\r\n",
      5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->body;
}

TEST_F(Connections, AMethodNoRouteTakesIs405WithAllowOnAKnownPathAnd404Elsewhere) {
  for (const std::string method : {"OPTIONS", "TRACE", "CONNECT", "PROPFIND", "FOO", "get"}) {
    SCOPED_TRACE(method);
    RawConnection c(port_);
    const auto known = c.request(raw_request(method, "/v1/reminders"), 5s);
    ASSERT_TRUE(known);
    EXPECT_EQ(known->status, 405) << known->body;
    EXPECT_EQ(known->header("Allow"), "GET, HEAD, POST");  // HEAD as httplib answers it
    EXPECT_EQ(body_of(known)["error"]["code"], "method_not_allowed") << known->body;
    const auto unknown = c.request(raw_request(method, "/v1/nothing-here"), 5s);
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->status, 404) << unknown->body;
    EXPECT_EQ(body_of(c.request(kHealth, 5s))["status"], "ok");  // the connection goes on
  }
}

// RFC 9112 section 3.2.2: a server must take a target in absolute form (what a client sends a
// proxy), routed by its path; it was a 404.
TEST_F(Connections, AnAbsoluteFormTargetIsRoutedByItsPath) {
  RawConnection c(port_);
  for (const std::string target :
       {"http://example.com/livez", "HTTP://localhost:1/readyz?verbose", "https://a.example"}) {
    SCOPED_TRACE(target);
    const auto r = c.request(raw_request("GET", target), 5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    if (target.ends_with("verbose")) {
      EXPECT_NE(r->body.find("database"), std::string::npos) << r->body;
    }
    if (target.ends_with("example")) {
      EXPECT_NE(r->body.find("<html"), std::string::npos) << "the dashboard, at /";
    }
  }
}

// RFC 9110 section 9.3.7: OPTIONS * asks about the server as a whole; it was a 404. A 204 has
// no Content-Length (section 8.6), and the connection goes on.
TEST_F(Connections, OptionsAsteriskSaysWhatTheServerTakes) {
  RawConnection c(port_);
  const auto r = c.request(raw_request("OPTIONS", "*"), 5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204) << r->body;
  EXPECT_EQ(r->header("Allow"), "GET, HEAD, POST, PUT, PATCH, DELETE");
  EXPECT_EQ(r->header("Content-Length"), "");
  EXPECT_EQ(body_of(c.request(kHealth, 5s))["status"], "ok");
}

// Every Range is ignored, so no answer offers ranges; httplib said so to every HEAD.
TEST_F(Connections, AHeadAnswerOffersNoRanges) {
  httplib::Client client("127.0.0.1", port_);
  const auto r = client.Head("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->has_header("Accept-Ranges"));
}

// What httplib cannot read is named, not called a header line over 8 KiB.
TEST_F(Connections, AnUnreadableRequestLineIsA400SayingSo) {
  for (const std::string line :
       {"GET /health HTTP/2.0", "GET /he alth HTTP/1.1", "GET  /health HTTP/1.1 x", "GET"}) {
    SCOPED_TRACE(line);
    RawConnection c(port_);
    const auto answer = c.request(line + "\r\nHost: 127.0.0.1\r\n\r\n", 5s);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 400) << answer->body;
    EXPECT_NE(body_of(answer)["error"]["message"].get<std::string>().find("request line"),
              std::string::npos)
        << answer->body;
  }
}

// A header line without a colon was skipped (200); a head of bare LFs waited out the 10 s
// deadline for a 408 (explore14a #14).
TEST_F(Connections, AHeadThatIsNotCrlfLinesOfNameColonValueIsA400AtOnce) {
  for (const std::string head : {"GET /health HTTP/1.1\nHost: 127.0.0.1\n\n",
                                 "GET /health HTTP/1.1\r\nHost: 127.0.0.1\nX: y\n\n",
                                 "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColon\r\n\r\n"}) {
    SCOPED_TRACE(head);
    // Alone, and after a request on the same connection (the request thread reads it).
    for (const bool pipelined : {false, true}) {
      RawConnection c(port_);
      ASSERT_TRUE(c.send(pipelined ? kHealth + head : head));
      if (pipelined) {
        EXPECT_EQ(status_of(c.read_response(kPrompt)), 200);
      }
      const auto refused = c.read_response(kPrompt);
      ASSERT_TRUE(refused) << "no answer at once";
      EXPECT_EQ(refused->status, 400);
      EXPECT_EQ(body_of(refused)["error"]["code"], "bad_request") << refused->body;
      EXPECT_EQ(refused->header("Connection"), "close");
      EXPECT_TRUE(c.closed_by_server(3s));
    }
  }
  EXPECT_EQ(body_of(RawConnection(port_).request(kHealth, kPrompt))["status"], "ok");
}

TEST_F(Connections, ABodyTooLargeIsRefusedAndTheConnectionGoesOn) {
  RawConnection c(port_);
  const auto refused =
      c.request(raw_request("POST", "/v1/reminders", std::string(300000, ' ')), 10s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  EXPECT_EQ(body_of(refused)["error"]["field"], "body");
  const auto next = c.request(kHealth, 5s);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

// Only the declared length decides these: no byte of the body is waited for (they were answered
// after the 10 s request timeout).
TEST_F(Connections, ALengthOverTheLimitOrUnreadableIsAnsweredAtOnce) {
  const std::vector<std::pair<std::string, int>> cases = {
      {"2000000", 413}, {"-5", 400}, {"abc", 400}, {"99999999999999999999", 400}};
  for (const auto& [length, status] : cases) {
    SCOPED_TRACE(length);
    RawConnection c(port_);
    const auto start = std::chrono::steady_clock::now();
    const auto answer = c.request(
        "PUT /v1/flags/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
            length + "\r\n\r\n",
        kPrompt);
    ASSERT_TRUE(answer) << "no answer within " << kPrompt.count() << " ms";
    EXPECT_LT(since(start), kPrompt);
    EXPECT_EQ(answer->status, status);
    EXPECT_EQ(body_of(answer)["error"]["field"], status == 413 ? "body" : "Content-Length")
        << answer->body;
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
}

// curl -d, as in the README, sends JSON as a form: such bodies over 8 KiB were refused (413).
TEST_F(Connections, AFormEncodedBodyIsReadUpToTheBodyLimit) {
  const char* form = "application/x-www-form-urlencoded";
  std::string items;
  for (int i = 0; i < 70; ++i)
    items += (i > 0 ? "," : "") + create_body("form-" + std::to_string(i));
  const auto batch = client_->Post("/v1/reminders/batch", R"({"items":[)" + items + "]}", form);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->status, 200) << batch->body.substr(0, 300);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 70);
  const auto set =
      client_->Put("/v1/flags/form", R"({"value": true)" + std::string(20000, ' ') + "}", form);
  ASSERT_TRUE(set);
  EXPECT_EQ(set->status, 200) << set->body;
  const auto big = client_->Put("/v1/flags/form", std::string(300000, ' '), form);
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(json::parse(big->body)["error"]["field"], "body");
}

TEST_F(Connections, ALongBodySentInPartsIsReadAsItArrives) {
  std::string items;
  for (int i = 0; i < 700; ++i)
    items += (i > 0 ? "," : "") + create_body("batch-" + std::to_string(i));
  const std::string request =
      raw_request("POST", "/v1/reminders/batch", R"({"items":[)" + items + "]}");
  ASSERT_GT(request.size(), 80000u);  // more than the 64 KiB gathered before it is served
  RawConnection c(port_);
  ASSERT_TRUE(c.send(request.substr(0, 70000)));
  std::this_thread::sleep_for(200ms);
  const auto answer = c.request(request.substr(70000), 10s);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200) << answer->body.substr(0, 300);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 700);
  EXPECT_EQ(status_of(c.request(kHealth, 5s)), 200);
}

// In any case (RFC 9110 section 10.1.1): httplib answered the exact "100-continue" only, and
// "100-Continue" waited out its client's own timer (explore15b #7).
TEST_F(Connections, AClientWaitingForContinueGetsItThenAnAnswer) {
  for (const std::string expect : {"100-continue", "100-Continue", "100-CONTINUE"}) {
    SCOPED_TRACE(expect);
    const std::string body = create_body("continue-" + expect);
    RawConnection c(port_);
    ASSERT_TRUE(c.send("POST /v1/reminders HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: " + expect +
                       "\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n"));
    const auto go_on = c.read_response(kPrompt);
    ASSERT_TRUE(go_on);
    EXPECT_EQ(go_on->status, 100);
    const auto created = c.request(body, 5s);
    ASSERT_TRUE(created);
    EXPECT_EQ(created->status, 201) << created->body;
  }
}

// A server must ignore an HTTP/1.0 client's expectation (RFC 9110 section 10.1.1): such a
// client knows no 100, and got one before its answer (explore15b).
TEST_F(Connections, AnHttp10ClientsExpectationIsIgnored) {
  const std::string body = create_body("continue-1.0");
  RawConnection c(port_);
  ASSERT_TRUE(
      c.send("POST /v1/reminders HTTP/1.0\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
             "Content-Type: application/json\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n"));
  EXPECT_FALSE(c.read_response(kPrompt));
  const auto created = c.request(body, 5s);
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
}

class OneThread : public ApiTest {
 protected:
  OneThread() : ApiTest({{"NUDGE_API_THREADS", "1"}, {"NUDGE_API_REQUEST_TIMEOUT_MS", "3000"}}) {}
};

TEST_F(OneThread, SlowAndIdleClientsDoNotHoldTheOnlyRequestThread) {
  RawConnection idle(port_);
  ASSERT_EQ(status_of(idle.request(kHealth, 5s)), 200);
  // A client sends its head and half its body, then pauses.
  const std::string request = raw_request("POST", "/v1/reminders", create_body("slow"));
  const std::size_t half = request.size() - 40;
  RawConnection slow(port_);
  ASSERT_TRUE(slow.send(request.substr(0, half)));
  std::this_thread::sleep_for(100ms);  // give the server time to read what was sent

  const auto start = std::chrono::steady_clock::now();
  const auto created = RawConnection(port_).request(
      raw_request("POST", "/v1/reminders", create_body("fast")), kPrompt);
  ASSERT_TRUE(created) << "no answer within " << kPrompt.count() << " ms";
  EXPECT_EQ(created->status, 201);
  EXPECT_LT(since(start), kPrompt);

  const auto finished = slow.request(request.substr(half), 5s);
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->status, 201) << finished->body;
  EXPECT_EQ(status_of(idle.request(kHealth, 5s)), 200);
}

TEST_F(OneThread, ARequestThatStopsArrivingIsAnswered408AfterTheRequestTimeout) {
  RawConnection stalled(port_);
  ASSERT_TRUE(stalled.send(raw_request("POST", "/v1/reminders", create_body("x")).substr(0, 120)));
  const auto start = std::chrono::steady_clock::now();
  const auto answer = stalled.read_response(10s);
  ASSERT_TRUE(answer);
  EXPECT_GE(since(start), 2500ms);  // the 3 s request timeout, not at once
  EXPECT_EQ(answer->status, 408);
  EXPECT_EQ(body_of(answer)["error"]["code"], "request_timeout") << answer->body;
  EXPECT_TRUE(stalled.closed_by_server(kPrompt));
}

class ShortKeepAlive : public ApiTest {
 protected:
  ShortKeepAlive() : ApiTest({{"NUDGE_API_KEEP_ALIVE_SECONDS", "1"}}) {}
};

TEST_F(ShortKeepAlive, AnIdleConnectionIsClosedAfterTheKeepAliveTimeout) {
  RawConnection c(port_);
  const auto answer = c.request(kHealth, 5s);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->header("Keep-Alive"), "timeout=1, max=1000");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_server(5s));
  EXPECT_GE(since(start), 800ms);
  EXPECT_LT(since(start), 2500ms);
}

TEST_F(Connections, SigtermClosesIdleConnectionsAndFinishesARequestBeingSent) {
  const std::string r = "/v1/reminders/" + std::to_string(create_one("term"));
  RawConnection idle(port_);
  ASSERT_EQ(status_of(idle.request(kHealth, 5s)), 200);
  const std::string cancel = raw_request("POST", r + "/cancel", std::string("{}"));
  RawConnection sending(port_);
  ASSERT_TRUE(sending.send(cancel.substr(0, cancel.size() - 2)));  // all but the body
  std::this_thread::sleep_for(100ms);                              // the server has read the head

  api_->signal(SIGTERM);
  EXPECT_TRUE(idle.closed_by_server(5s));
  EXPECT_TRUE(wait_until(5s, [&] { return !RawConnection(port_).connected(); }))
      << "still accepting connections";
  const auto answer = sending.request("{}", 5s);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200) << answer->body;
  EXPECT_EQ(body_of(answer)["status"], "CANCELLED");
  EXPECT_EQ(answer->header("Connection"), "close");
  EXPECT_EQ(api_->wait(10s), 0) << api_->log();
}

// A request still arriving at the stop gets ConnectionLoop::kStopGrace (5 s) more, not its own
// deadline (26 s for a 1 MiB body, past a service manager's patience): then a 503, and the API
// exits.
TEST_F(Connections, SigtermCutsARequestStillArrivingAfterTheGraceWithA503) {
  RawConnection sending(port_);
  const std::string body(100000, 'x');
  const std::string head = raw_request("POST", "/v1/reminders", body);
  ASSERT_TRUE(sending.send(head.substr(0, head.size() - body.size() + 10)));  // 10 bytes of body
  std::this_thread::sleep_for(100ms);
  const auto stopped = std::chrono::steady_clock::now();
  api_->signal(SIGTERM);
  const auto answer = sending.read_response(15s);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 503) << answer->body;
  EXPECT_EQ(body_of(answer)["error"]["code"], "unavailable");
  EXPECT_EQ(answer->header("Retry-After"), "1");
  EXPECT_GE(since(stopped), 4500ms);
  EXPECT_EQ(api_->wait(10s), 0) << api_->log();
  EXPECT_LT(since(stopped), 8s);
}

// Slow and oversized requests: a head over 64 KiB is refused at once (431), a request must arrive
// by its deadline (request_timeout_ms, plus time for its body at a minimum rate) or gets a 408
// and the connection closes, and a caller without a token for the route cannot make the API read
// a body that has not all arrived: none of them holds a request thread, so /health goes on
// answering.

// The head of a request whose body is `length` bytes long, with `headers` (each ending in CRLF).
std::string head_of(const std::string& method, const std::string& path, std::size_t length,
                    const std::string& headers = "") {
  return method + " " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + headers +
         "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

// Two request threads, so that a few held ones would show; short deadlines, so that the tests
// are quick: a head has 1 s, a body 1 s more per 64 KiB.
class SlowClients : public ApiTest {
 protected:
  explicit SlowClients(const std::string& auth = "token")
      : ApiTest({{"NUDGE_API_AUTH", auth},
                 {"NUDGE_API_THREADS", "2"},
                 {"NUDGE_API_REQUEST_TIMEOUT_MS", "1000"}}) {}

  // /health answers on a new connection within kPrompt.
  void expect_health_answers_promptly() {
    const auto start = std::chrono::steady_clock::now();
    const auto health = RawConnection(port_).request(kHealth, 5s);
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_LT(since(start), kPrompt);
  }
};

class SlowClientsWithoutAuth : public SlowClients {
 protected:
  SlowClientsWithoutAuth() : SlowClients("off") {}
};

TEST_F(SlowClients, TwentySlowBodiesWithoutATokenAreRefusedWithoutHoldingAThread) {
  // The attack of finding 2: a large declared body, 70,000 bytes of it, then a trickle.
  std::vector<RawConnection> slow;
  for (int i = 0; i < 20; ++i) {
    slow.emplace_back(port_);
    ASSERT_TRUE(
        slow.back().send(head_of("POST", "/v1/reminders", 900000) + std::string(70000, ' ')));
  }
  expect_health_answers_promptly();
  for (std::size_t i = 0; i < slow.size(); ++i) {
    SCOPED_TRACE(i);
    slow[i].send(" ");  // still trickling
    const auto answer = slow[i].read_response(5s);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 401);
    EXPECT_EQ(answer->header("Connection"), "close");
    EXPECT_EQ(body_of(answer)["error"]["field"], "Authorization") << answer->body;
    EXPECT_TRUE(slow[i].closed_by_server(3s));
  }
  expect_health_answers_promptly();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
}

TEST_F(SlowClients, ALargeBodyIsReadOnlyWithATokenOfTheRoutesScope) {
  const std::string write = make_token("w", "write");
  const std::string read = make_token("r", "read");
  std::string items;
  for (int i = 0; i < 700; ++i) {
    items += std::string(i > 0 ? "," : "") + R"({"entity_type":"user","entity_id":"b)" +
             std::to_string(i) +
             R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
             R"("run_at":"2099-01-01T00:00:00Z"})";
  }
  const std::string body = R"({"items":[)" + items + "]}";
  ASSERT_GT(body.size(), 80000u);  // more than the 64 KiB gathered before it is served

  struct Case {
    std::string headers;
    int status;
  };
  const std::vector<Case> cases = {
      {"Authorization: Bearer " + read + "\r\n", 403},       // the wrong scope
      {"Authorization: Bearer nudge_not_a_token\r\n", 401},  // not a token
      {"", 401},                                             // none
      {"Authorization: Bearer " + write + "\r\n", 200}};     // its own
  for (const auto& c : cases) {
    SCOPED_TRACE(c.status);
    RawConnection conn(port_);
    const std::string request = head_of("POST", "/v1/reminders/batch", body.size(), c.headers);
    ASSERT_TRUE(conn.send(request + body.substr(0, 70000)));
    if (c.status != 200) {
      // Answered without the rest of the body, which is never read.
      const auto answer = conn.read_response(kPrompt);
      ASSERT_TRUE(answer);
      EXPECT_EQ(answer->status, c.status) << answer->body;
      EXPECT_EQ(answer->header("Connection"), "close");
      EXPECT_TRUE(conn.closed_by_server(3s));
      continue;
    }
    const auto answer = conn.request(body.substr(70000), 5s);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 200) << answer->body.substr(0, 300);
    EXPECT_EQ(conn.request(kHealth, 5s).value_or(RawResponse{}).status, 200);  // kept alive
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 700);
}

// A token holder's slow uploads: each holds a request thread while its body trickles in, so a
// token, and all tokens together, hold at most half of them so (here 1 of 2): /health and other
// tokens' requests still get theirs.
class SlowUploads : public ApiTest {
 protected:
  SlowUploads()
      : ApiTest({{"NUDGE_API_AUTH", "token"},
                 {"NUDGE_API_THREADS", "2"},
                 {"NUDGE_API_REQUEST_TIMEOUT_MS", "3000"}}) {}
};

TEST_F(SlowUploads, ATokenHoldsAtMostHalfTheThreadsWithBodiesStillArriving) {
  const std::string slow_token = "Authorization: Bearer " + make_token("slow", "write") + "\r\n";
  const std::string other = "Authorization: Bearer " + make_token("other", "write") + "\r\n";
  const std::string slow_head = head_of("POST", "/v1/reminders", 100000, slow_token);
  // Three at once: the first served holds the token's slot, the others are refused at once.
  std::vector<RawConnection> slow;
  for (int i = 0; i < 3; ++i) {
    slow.emplace_back(port_);
    ASSERT_TRUE(slow.back().send(slow_head + std::string(70000, ' ')));
  }
  int refused = 0;
  std::optional<std::size_t> holder;
  for (std::size_t i = 0; i < slow.size(); ++i) {
    const auto answer = slow[i].read_response(kPrompt);
    if (!answer) {
      holder = i;
      continue;
    }
    EXPECT_EQ(answer->status, 429) << answer->body;
    EXPECT_EQ(body_of(answer)["error"]["code"], "rate_limited") << answer->body;
    EXPECT_FALSE(answer->header("Retry-After").empty());
    ++refused;
  }
  EXPECT_EQ(refused, 2);
  ASSERT_TRUE(holder);
  const auto health = RawConnection(port_).request(kHealth, 5s);
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const auto create = [&](const std::string& headers, const std::string& id) {
    const std::string body = R"({"entity_type":"user","entity_id":")" + id +
                             R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
                             R"("run_at":"2099-01-01T00:00:00Z"})";
    return RawConnection(port_)
        .request(head_of("POST", "/v1/reminders", body.size(), headers) + body, 5s)
        .value_or(RawResponse{})
        .status;
  };
  EXPECT_EQ(create(other, "o"), 201) << "another token";
  // All tokens together hold at most half the threads so: another token's slow upload waits
  // too (two tokens once took all 16 threads, /livez included, for 14.6 s a round).
  RawConnection other_slow(port_);
  ASSERT_TRUE(
      other_slow.send(head_of("POST", "/v1/reminders", 100000, other) + std::string(70000, ' ')));
  const auto all_taken = other_slow.read_response(kPrompt);
  ASSERT_TRUE(all_taken);
  EXPECT_EQ(all_taken->status, 429) << all_taken->body;
  EXPECT_NE(all_taken->body.find("all tokens together"), std::string::npos) << all_taken->body;
  // Once the holder is answered (its body stopped), the token's slot is free again.
  const auto stopped = slow[*holder].read_response(10s);
  ASSERT_TRUE(stopped);
  EXPECT_GE(stopped->status, 400);
  EXPECT_EQ(create(slow_token, "s"), 201);
}

TEST_F(SlowClients, AnUnknownRouteAChunkedBodyOrContinueWithoutATokenGetNoBodyRead) {
  struct Case {
    std::string name;
    std::string bytes;  // the head and what is sent of the body
    int status;
  };
  const std::vector<Case> cases = {
      {"an unknown route", head_of("POST", "/v1/nothing-here", 900000) + std::string(70000, ' '),
       404},
      // Its first chunk here and the rest still coming.
      {"a chunked body",
       "POST /v1/reminders HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: "
       "chunked\r\n\r\n1000\r\n" +
           std::string(4096, ' ') + "\r\n1\r\n",
       401},
      // Told 401 instead of 100 Continue: the body is never sent.
      {"Expect: 100-continue", head_of("POST", "/v1/reminders", 900000, "Expect: 100-continue\r\n"),
       401}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawConnection conn(port_);
    const auto answer = conn.request(c.bytes, kPrompt);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, c.status);
    EXPECT_EQ(answer->header("Connection"), "close");
    EXPECT_TRUE(conn.closed_by_server(3s));
  }
}

TEST_F(SlowClients, AHeadOverSixtyFourKiBIsA431AtOnce) {
  // Short header lines, as in the finding: 100 KB of them.
  std::string head = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; head.size() < 100000; ++i) head += "X-" + std::to_string(i) + ": y\r\n";
  RawConnection conn(port_);
  const auto start = std::chrono::steady_clock::now();
  const auto answer = conn.request(head + "\r\n", kPrompt);
  ASSERT_TRUE(answer) << "no answer within " << kPrompt.count() << " ms";
  EXPECT_LT(since(start), kPrompt);
  EXPECT_EQ(answer->status, 431);
  EXPECT_EQ(answer->header("Connection"), "close");
  EXPECT_EQ(answer->header("Content-Type"), "application/json");
  EXPECT_EQ(body_of(answer)["error"]["code"], "header_too_large") << answer->body;
  EXPECT_TRUE(conn.closed_by_server(3s));
  expect_health_answers_promptly();
}

// Within the 64 KiB head, the request line and each header line are at most 8 KiB (httplib's
// limits): each past it is refused saying so.
TEST_F(SlowClients, ALineOverEightKiBIsRefusedSayingSo) {
  const auto answer_to = [&](const std::string& head) {
    return RawConnection(port_).request(head, kPrompt);
  };
  const auto long_line = answer_to("GET /v1/reminders?entity_id=" + std::string(9000, 'a') +
                                   " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_TRUE(long_line);
  EXPECT_EQ(long_line->status, 414);
  EXPECT_EQ(body_of(long_line)["error"]["code"], "uri_too_long") << long_line->body;
  const auto long_header = answer_to(
      "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + std::string(9000, 'a') + "\r\n\r\n");
  ASSERT_TRUE(long_header);
  EXPECT_EQ(long_header->status, 400);
  EXPECT_NE(body_of(long_header)["error"]["message"].get<std::string>().find("8 KiB"),
            std::string::npos)
      << long_header->body;
  expect_health_answers_promptly();
}

TEST_F(SlowClients, AHeadTrickledByteByByteIsClosedByItsDeadline) {
  // Each byte is progress: only a deadline for the whole head ends it.
  RawConnection conn(port_);
  const std::string head = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  ASSERT_TRUE(conn.send(head));
  const auto start = std::chrono::steady_clock::now();
  std::optional<RawResponse> answer;
  while (!answer && since(start) < 5s) {
    conn.send("X");
    answer = conn.read_response(100ms);
  }
  ASSERT_TRUE(answer) << "still open after " << since(start).count() << " ms";
  EXPECT_GE(since(start), 800ms);  // the 1 s request timeout, not at once
  EXPECT_LT(since(start), 2500ms);
  EXPECT_EQ(answer->status, 408);
  EXPECT_EQ(answer->header("Connection"), "close");
  EXPECT_EQ(body_of(answer)["error"]["code"], "request_timeout") << answer->body;
  EXPECT_TRUE(conn.closed_by_server(3s));
}

TEST_F(SlowClientsWithoutAuth, ABodyTrickledPastItsDeadlineIs408AndTheThreadsGoOn) {
  // 100,000 bytes: 1 s for the head plus about 1.5 s for the body.
  std::vector<RawConnection> slow;
  for (int i = 0; i < 4; ++i) {
    slow.emplace_back(port_);
    ASSERT_TRUE(
        slow.back().send(head_of("PUT", "/v1/flags/slow", 100000) + std::string(70000, ' ')));
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::optional<RawResponse>> answers(slow.size());
  while (since(start) < 6s) {
    bool all = true;
    for (std::size_t i = 0; i < slow.size(); ++i) {
      if (answers[i]) continue;
      slow[i].send(" ");
      answers[i] = slow[i].read_response(50ms);
      all = all && answers[i].has_value();
    }
    if (all) break;
  }
  EXPECT_GE(since(start), 1500ms);
  EXPECT_LT(since(start), 4500ms);
  for (std::size_t i = 0; i < slow.size(); ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(answers[i]);
    EXPECT_EQ(answers[i]->status, 408);
    EXPECT_EQ(body_of(answers[i])["error"]["code"], "request_timeout") << answers[i]->body;
    EXPECT_TRUE(slow[i].closed_by_server(3s));
  }
  expect_health_answers_promptly();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
}

TEST_F(SlowClientsWithoutAuth, ASlowButSteadyBodyArrivesInTime) {
  // 100,000 bytes in 10 KB parts over 2 s: past the 1 s request timeout, within the body's time.
  const std::string body = R"({"value": true)" + std::string(99985, ' ') + "}";
  ASSERT_EQ(body.size(), 100000u);
  RawConnection conn(port_);
  ASSERT_TRUE(conn.send(head_of("PUT", "/v1/flags/steady", body.size())));
  for (std::size_t at = 0; at + 10000 < body.size(); at += 10000) {
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(conn.send(body.substr(at, 10000)));
  }
  const auto answer = conn.request(body.substr(90000), 5s);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200) << answer->body;
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 1);
}

TEST_F(SlowClientsWithoutAuth, AnUnreadBodyIsDroppedWithoutAThreadAndTheConnectionGoesOn) {
  // /health reads no body: the rest of this one is dropped as it arrives, by the loop.
  RawConnection conn(port_);
  ASSERT_TRUE(conn.send(head_of("GET", "/health", 200000) + std::string(70000, ' ')));
  const auto answer = conn.read_response(kPrompt);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  // While its client takes its time, the two request threads serve others.
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(conn.send(std::string(10000, ' ')));
    expect_health_answers_promptly();
  }
  ASSERT_TRUE(conn.send(std::string(200000 - 70000 - 30000, ' ')));
  const auto next = conn.request(kHealth, 5s);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

}  // namespace
}  // namespace nudge::test
