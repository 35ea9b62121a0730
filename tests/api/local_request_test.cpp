// With auth off, as scripts/run.sh runs it, the API answers only requests that name this machine
// and, from a browser, only its own pages: a web page cannot post to it (a text/plain form post
// needs no preflight) nor rebind its name to 127.0.0.1 and read it. With tokens, neither is
// checked: a browser never sends a bearer token by itself.

#include "api/api_fixture.hpp"
#include "support/raw_http.hpp"

namespace nudge::test {
namespace {

const std::string kCreate =
    R"({"entity_type":"x","entity_id":"csrf","event_type":"e","channel":"log",)"
    R"("schedule_type":"one_time","run_at":"2099-01-01T00:00:00Z"})";

class LocalRequests : public ApiTest {
 protected:
  // POST /v1/reminders as a browser form would send it, with these headers.
  Reply plain_post(const httplib::Headers& headers) {
    return to_reply(client_->Post("/v1/reminders", headers, kCreate, "text/plain"));
  }
  std::string self() const { return "127.0.0.1:" + std::to_string(port_); }
};

TEST_F(LocalRequests, APostFromAnotherOriginChangesNothing) {
  for (const std::string origin :
       {"https://attacker.example", "http://127.0.0.1:1", "null", "http://localhost.evil"}) {
    const Reply r = plain_post({{"Origin", origin}});
    EXPECT_EQ(r.status, 403) << origin << " " << r.body.dump();
    EXPECT_EQ(r.error_field(), "Origin") << r.body.dump();
    EXPECT_EQ(r.body["error"]["code"], "forbidden");
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);

  EXPECT_EQ(plain_post({{"Origin", "http://" + self()}}).status, 201);  // the dashboard's own
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1);
}

TEST_F(LocalRequests, OnlyLoopbackNamesAreAnswered) {
  const std::string port = std::to_string(port_);
  for (const std::string& host :
       {"rebind.attacker.example:" + port, "10.0.0.5:" + port, "localhost.evil:" + port}) {
    const Reply r = send_with({{"Host", host}}, "GET", "/v1/reminders");
    EXPECT_EQ(r.status, 403) << host << " " << r.body.dump();
    EXPECT_EQ(r.error_field(), "Host") << r.body.dump();
  }
  for (const std::string& host :
       {"localhost:" + port, "LOCALHOST:" + port, "127.0.0.1:" + port, "[::1]:" + port,
        "app.localhost:" + port, std::string("127.0.0.1")}) {
    EXPECT_EQ(send_with({{"Host", host}}, "GET", "/v1/reminders").status, 200) << host;
  }
  // A request for data without a Host, or with two, names nothing to trust (it was answered:
  // explore15b #8).
  for (const std::string& head :
       {std::string("GET /v1/reminders HTTP/1.1\r\n\r\n"),
        std::string(
            "GET /v1/reminders HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n")}) {
    RawConnection c(port_);
    const auto r = c.request(head, 5s);
    ASSERT_TRUE(r) << head;
    EXPECT_EQ(r->status, 403) << head << r->body;
  }
  // The probes and the dashboard's files are the same for every name.
  EXPECT_EQ(send_with({{"Host", "rebind.attacker.example"}}, "GET", "/health").status, 200);
}

class LocalRequestsWithTokens : public ApiTest {
 protected:
  LocalRequestsWithTokens() : ApiTest({{"NUDGE_API_AUTH", "token"}}) {}
};

TEST_F(LocalRequestsWithTokens, AnyHostAndOriginMayCallWithAToken) {
  const std::string token = make_token("web", "read,write");
  httplib::Headers headers = bearer(token);
  headers.emplace("Host", "nudge.example.com");
  headers.emplace("Origin", "https://app.example.com");
  EXPECT_EQ(send_with(headers, "POST", "/v1/reminders", kCreate).status, 201);
}

}  // namespace
}  // namespace nudge::test
