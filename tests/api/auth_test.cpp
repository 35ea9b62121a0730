// Tokens over real HTTP: every documented operation needs its scope (read from the OpenAPI
// document), refusals are 401 (with WWW-Authenticate), 403 and 429 (with Retry-After), the
// format is checked before the database, a revoked token stops working at once, tokens never
// reach the log, and nudge-api refuses to serve without auth on an address others can reach.

#include <set>

#include "api/api_fixture.hpp"
#include "support/prometheus_text.hpp"
#include "support/sse_client.hpp"
#include "token.hpp"

namespace nudge::test {
namespace {

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// A token with a valid format whose checksum does not match: well formed to the eye only.
std::string with_bad_checksum(std::string token) {
  token.back() = token.back() == 'a' ? 'b' : 'a';
  return token;
}

class Auth : public ApiTest {
 protected:
  explicit Auth(const std::map<std::string, std::string>& settings = {})
      : ApiTest(with_auth(settings)) {}
  static std::map<std::string, std::string> with_auth(std::map<std::string, std::string> s) {
    s.emplace("NUDGE_API_AUTH", "token");
    return s;
  }
  Reply as(const std::string& token, const std::string& method, const std::string& path,
           const std::string& body = "") {
    return send_with(bearer(token), method, path, body);
  }
};

TEST_F(Auth, EveryDocumentedOperationNeedsItsOwnScopeAndNoOther) {
  const auto doc = get("/openapi.json");  // open: it is how a client learns it needs a token
  ASSERT_EQ(doc.status, 200);
  ASSERT_TRUE(doc.body["components"]["securitySchemes"].contains("bearer"));
  // Each scope alone, and each pair: the pair lacking a scope is refused where it is needed.
  std::map<std::string, std::string> only, lacking;
  for (const std::string scope : {"read", "write", "admin", "metrics"})
    only[scope] = make_token(scope, scope);
  lacking["read"] = make_token("no-read", "write,admin,metrics");
  lacking["write"] = make_token("no-write", "read,admin,metrics");
  lacking["admin"] = make_token("no-admin", "read,write,metrics");
  lacking["metrics"] = make_token("no-metrics", "read,write,admin");
  const long id = [&] {
    const auto r =
        as(only["write"], "POST", "/v1/reminders",
           R"({"entity_type":"user","entity_id":"doc","event_type":"e",)"
           R"("channel":"log","schedule_type":"one_time","run_at":"2099-01-01T00:00:00Z"})");
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.body.value("id", 0L);
  }();

  std::map<std::string, int> protected_by;
  int open = 0;
  for (const auto& [path, item] : doc.body["paths"].items()) {
    const std::string concrete = concrete_path(path, id);
    for (const auto& method : kRouteMethods) {
      if (!item.contains(lowercase(method))) continue;
      const json& op = item[lowercase(method)];
      SCOPED_TRACE(method + " " + path);
      if (op.contains("security") && op["security"].empty()) {
        ++open;
        const auto r = send(method, concrete, "{}");
        EXPECT_NE(r.status, 401);
        EXPECT_NE(r.status, 403);
        continue;
      }
      ASSERT_TRUE(op.contains("x-nudge-scope")) << "every protected operation names its scope";
      const std::string scope = op["x-nudge-scope"];
      const bool any = scope == "any";  // every token holds it (GET /v1/auth)
      ASSERT_TRUE(any || only.contains(scope)) << scope;
      ++protected_by[scope];
      const std::string holder = any ? only["metrics"] : only[scope];
      for (const std::string status : {"401", "403", "429"})
        EXPECT_TRUE(op["responses"].contains(status)) << status;

      const auto none = send(method, concrete, "{}");
      EXPECT_EQ(none.status, 401);
      EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer");
      EXPECT_EQ(none.body["error"]["code"], "unauthorized");
      EXPECT_EQ(none.error_field(), "Authorization");

      const auto forged = as(with_bad_checksum(holder), method, concrete, "{}");
      EXPECT_EQ(forged.status, 401);
      EXPECT_EQ(forged.header("WWW-Authenticate"), "Bearer error=\"invalid_token\"");

      if (any) {
        for (const auto& [name, token] : only) EXPECT_EQ(as(token, method, concrete).status, 200);
        continue;
      }
      const auto refused = as(lacking[scope], method, concrete, "{}");
      EXPECT_EQ(refused.status, 403);
      EXPECT_EQ(refused.body["error"]["code"], "forbidden");
      EXPECT_NE(refused.header("WWW-Authenticate").find("insufficient_scope"), std::string::npos);
      EXPECT_NE(refused.body["error"]["message"].get<std::string>().find(scope), std::string::npos);

      const auto served = as(only[scope], method, concrete, "{}");
      EXPECT_NE(served.status, 0);
      EXPECT_NE(served.status, 401) << served.body.dump();
      EXPECT_NE(served.status, 403) << served.body.dump();
    }
  }
  EXPECT_EQ(open, 5);  // /health, /ready, /livez, /readyz, /openapi.json
  EXPECT_GE(protected_by["read"], 10);
  EXPECT_GE(protected_by["write"], 10);
  EXPECT_EQ(protected_by["admin"], 1);    // GET /v1/audit
  EXPECT_EQ(protected_by["metrics"], 1);  // GET /metrics
  EXPECT_EQ(protected_by["any"], 1);      // GET /v1/auth
  EXPECT_EQ(protected_by["read"] + protected_by["write"] + protected_by["admin"] +
                protected_by["metrics"] + protected_by["any"] + open,
            45);  // every operation of the document (openapi_test counts them too)
}

// What the dashboard asks before it offers a control: the token's name and every scope it holds,
// for any token; with auth off (below), every scope.
TEST_F(Auth, GetAuthTellsEachTokenItsNameAndScopes) {
  const std::vector<std::tuple<std::string, std::string, json>> cases = {
      {"reader", "read", json{"read"}},
      {"writer", "write,read", json{"read", "write"}},
      {"boss", "admin", json{"admin"}},
      {"scraper", "metrics", json{"metrics"}},
  };
  for (const auto& [name, scopes, listed] : cases) {
    const auto r = as(make_token(name, scopes), "GET", "/v1/auth");
    EXPECT_EQ(r.status, 200) << name << " " << r.body.dump();
    EXPECT_EQ(r.body, (json{{"auth", "token"}, {"token", name}, {"scopes", listed}})) << name;
  }
  const auto none = get("/v1/auth");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.error_field(), "Authorization");
  // A token revoked is unknown here too.
  const std::string gone = make_token("gone", "read,write");
  EXPECT_EQ(as(gone, "GET", "/v1/auth").status, 200);
  sql("SELECT nudge.revoke_token('gone')");
  EXPECT_TRUE(wait_until(10s, [&] { return as(gone, "GET", "/v1/auth").status == 401; }));
  EXPECT_EQ(as(make_token("x", "read"), "GET", "/v1/auth?token=x").error_field(), "token");
}

// An operator alerting on a client refused for its scope finds the 403s under the token's name,
// whether the request had a body (refused before it is read) or not, and under the route.
TEST_F(Auth, RefusalsForAScopeAreCountedUnderTheTokenAndTheRoute) {
  const std::string reader = make_token("reader", "read");
  EXPECT_EQ(as(reader, "POST", "/v1/reminders/1/pause").status, 403);
  EXPECT_EQ(as(reader, "POST", "/v1/reminders", R"({"entity_type": "a"})").status, 403);
  EXPECT_EQ(as(reader, "GET", "/v1/audit").status, 403);
  EXPECT_EQ(as(reader, "GET", "/v1/reminders").status, 200);
  const auto scraped = client_->Get("/metrics", bearer(make_token("prometheus", "metrics")));
  ASSERT_TRUE(scraped && scraped->status == 200);
  const std::string& text = scraped->body;
  EXPECT_EQ(sample_value(text, R"(nudge_api_token_requests_total{token="reader",status="403"})"), 3)
      << text;
  EXPECT_EQ(sample_value(text, R"(nudge_api_token_requests_total{token="reader",status="200"})"),
            1);
  EXPECT_EQ(
      sample_value(text,
                   R"(nudge_api_requests_total{method="POST",route="/v1/reminders",status="403"})"),
      1);
}

using AuthOff = ApiTest;

TEST_F(AuthOff, GetAuthSaysEveryScopeIsHeldToThisMachineOnly) {
  const auto r = get("/v1/auth");
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body, (json{{"auth", "off"},
                          {"token", nullptr},
                          {"scopes", json{"read", "write", "admin", "metrics"}}}));
  // As every route with a scope: not to a page of another site.
  const auto other = send_with({{"Origin", "http://evil.example"}}, "GET", "/v1/auth");
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(other.error_field(), "Origin");
}

TEST_F(Auth, TheDashboardAndTheDocsLoadWithoutATokenButTheirDataNeedsOne) {
  for (const std::string path : {"/", "/ui/app.js", "/docs", "/docs/swagger-ui.css"}) {
    const auto r = client_->Get(path.c_str());
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
  }
  const auto none = get("/v1/overview");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(as(make_token("dashboard", "read"), "GET", "/v1/overview").status, 200);
}

TEST_F(Auth, OtherSchemesAndMalformedTokensAre401WithoutEchoingThem) {
  const std::string token = make_token("ci", "read");
  const std::vector<std::pair<httplib::Headers, std::string>> cases = {
      {{{"Authorization", "Basic dXNlcjpwYXNz"}}, "Bearer"},
      {{{"Authorization", "Bearer"}}, "Bearer"},
      // A field value ends before trailing whitespace (RFC 9110 5.5): no token was sent.
      {{{"Authorization", "Bearer "}}, "Bearer"},
      {{{"Authorization", "Bearer nudge_short"}}, "Bearer error=\"invalid_token\""},
      {{{"Authorization", "Bearer " + token + "x"}}, "Bearer error=\"invalid_token\""},
      {{{"Authorization", "Bearer " + upper(token)}}, "Bearer error=\"invalid_token\""},
      {{{"Authorization", "Bearer ghp_" + token.substr(6)}}, "Bearer error=\"invalid_token\""},
  };
  for (const auto& [headers, challenge] : cases) {
    SCOPED_TRACE(headers.begin()->second);
    const auto r = send_with(headers, "GET", "/v1/reminders");
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.header("WWW-Authenticate"), challenge);
    EXPECT_EQ(r.body["error"]["code"], "unauthorized");
    EXPECT_EQ(r.body.dump().find(token.substr(6, 12)), std::string::npos);
  }
  // The scheme's name is case-insensitive (RFC 9110); the token is not.
  EXPECT_EQ(send_with({{"Authorization", "bearer " + token}}, "GET", "/v1/reminders").status, 200);
}

TEST_F(Auth, AWellFormedTokenNobodyMadeIs401) {
  const std::string real = make_token("ci", "read");
  const std::string unknown = [&] {
    // A token of the right form that is not in the database: made for another database.
    TestDatabase other;
    const Finished run = token_command(other.url(), {"create", "--name", "x", "--scopes", "read"});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.out.substr(0, run.out.find('\n'));
  }();
  ASSERT_NE(unknown, real);
  const auto r = as(unknown, "GET", "/v1/reminders");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer error=\"invalid_token\"");
  EXPECT_EQ(r.body["error"]["message"], "the token is unknown or revoked");
  EXPECT_EQ(as(real, "GET", "/v1/reminders").status, 200);
}

// The database is kept out of reach by a lock on the tokens table: whatever the API answers
// while it is held, it answered without reading the table.
TEST_F(Auth, ABadChecksumAndAKnownTokenAreAnsweredWithoutTheDatabase) {
  const std::string token = make_token("ci", "read");
  ASSERT_EQ(as(token, "GET", "/v1/reminders").status, 200);  // now verified and cached

  pqxx::connection locker(db_.url());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE nudge.api_tokens IN ACCESS EXCLUSIVE MODE");
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(as(with_bad_checksum(token), "GET", "/v1/reminders").status, 401);
  EXPECT_EQ(as(token, "GET", "/v1/reminders").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);

  // A well-formed token the cache does not know must be looked up: it waits for the lock.
  const std::string unknown = [&] {
    TestDatabase other;
    const Finished run = token_command(other.url(), {"create", "--name", "x", "--scopes", "read"});
    return run.out.substr(0, run.out.find('\n'));
  }();
  httplib::Client waiting("127.0.0.1", port_);
  waiting.set_read_timeout(1);
  EXPECT_FALSE(waiting.Get("/v1/reminders", bearer(unknown))) << "answered without a lookup";
  lock.abort();
}

TEST_F(Auth, LastUsedAtIsRecordedSoonAfterUse) {
  const std::string token = make_token("ci", "read");
  EXPECT_TRUE(value<bool>("SELECT last_used_at IS NULL FROM nudge.api_tokens WHERE name = 'ci'"));
  ASSERT_EQ(as(token, "GET", "/v1/reminders").status, 200);
  EXPECT_TRUE(wait_until(10s, [&] {
    return value<bool>("SELECT last_used_at IS NOT NULL FROM nudge.api_tokens WHERE name = 'ci'");
  }));
}

// EventSource cannot send headers: the stream, and only the stream, takes the token as
// ?access_token=, with the same scope check, and the token never reaches the log.
TEST_F(Auth, TheStreamTakesATokenInItsQueryAndNoOtherRouteDoes) {
  const std::string reader = make_token("dashboard", "read");
  const std::string writer = make_token("writer", "write");
  SseClient stream(port_, "/v1/stream?access_token=" + reader);
  EXPECT_EQ(stream.answer().status, 200) << stream.answer().body;
  as(writer, "PUT", "/v1/flags/seen", R"({"value": true})");
  const auto m = stream.next_event(30s);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->json()["flag"]["key"], "seen");

  EXPECT_EQ(SseClient(port_, "/v1/stream").answer().status, 401);
  EXPECT_EQ(SseClient(port_, "/v1/stream?access_token=" + writer).answer().status, 403);
  EXPECT_EQ(get("/v1/reminders?access_token=" + reader).status, 401);
  const std::string log = api_->log();
  EXPECT_EQ(log.find(reader.substr(6, 10)), std::string::npos) << log;
}

TEST_F(Auth, TokensNeverReachTheLog) {
  const std::string token = make_token("ci", "read");
  const std::string other = make_token("cd", "write");
  as(token, "GET", "/v1/reminders");
  as(token, "POST", "/v1/reminders", "{}");  // 403
  as(with_bad_checksum(token), "GET", "/v1/reminders");
  as(other, "POST", "/v1/reminders", "not json");
  as(other, "GET", "/v1/reminders/1");  // 403
  ASSERT_EQ(token_command(db_.url(), {"revoke", "ci"}).exit_code, 0);
  ASSERT_TRUE(wait_until(10s, [&] { return as(token, "GET", "/v1/reminders").status == 401; }));
  const std::string log = api_->log();
  EXPECT_NE(log.find("listening"), std::string::npos) << log;
  for (const std::string& secret : {token, other}) {
    EXPECT_EQ(log.find(secret.substr(6, 10)), std::string::npos) << log;
    EXPECT_EQ(log.find(secret.substr(secret.size() - 10)), std::string::npos) << log;
  }
}

class AuthLongCache : public Auth {
 protected:
  AuthLongCache() : Auth({{"NUDGE_API_TOKEN_CACHE_SECONDS", "3600"}}) {}
};

TEST_F(AuthLongCache, ARevokedTokenIsRefusedAtOnceThoughItWasCached) {
  const std::string token = make_token("ci", "read,write");
  ASSERT_EQ(as(token, "GET", "/v1/reminders").status, 200);
  const Finished revoked = token_command(db_.url(), {"revoke", "ci"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  // Cached for an hour: only the notification can end it this soon.
  EXPECT_TRUE(wait_until(5s, [&] { return as(token, "GET", "/v1/reminders").status == 401; }));
  EXPECT_NE(api_->log().find("a token was revoked or changed"), std::string::npos);
}

TEST_F(AuthLongCache, ScopesChangedOverSqlApplyAtOnce) {
  const std::string token = make_token("ci", "read");
  ASSERT_EQ(as(token, "GET", "/v1/reminders").status, 200);
  sql("UPDATE nudge.api_tokens SET scopes = '{write}' WHERE name = 'ci'");
  EXPECT_TRUE(wait_until(5s, [&] { return as(token, "GET", "/v1/reminders").status == 403; }));
}

class AuthShortCache : public Auth {
 protected:
  AuthShortCache() : Auth({{"NUDGE_API_TOKEN_CACHE_SECONDS", "3"}}) {}
};

TEST_F(AuthShortCache, ARevocationNobodyAnnouncedEndsWithTheCacheTime) {
  const std::string token = make_token("ci", "read");
  ASSERT_EQ(as(token, "GET", "/v1/reminders").status, 200);
  const auto revoked_at = std::chrono::steady_clock::now();
  {
    // Triggers off for this session (superuser): no notification is sent.
    pqxx::connection quiet(db_.url());
    pqxx::work tx(quiet);
    tx.exec("SET LOCAL session_replication_role = replica");
    tx.exec("UPDATE nudge.api_tokens SET revoked_at = now() WHERE name = 'ci'");
    tx.commit();
  }
  EXPECT_EQ(as(token, "GET", "/v1/reminders").status, 200) << "still cached";
  ASSERT_TRUE(wait_until(10s, [&] { return as(token, "GET", "/v1/reminders").status == 401; }));
  EXPECT_LT(std::chrono::steady_clock::now() - revoked_at, 5s);
}

class RateLimited : public Auth {
 protected:
  RateLimited() : Auth({{"NUDGE_API_RATE_PER_TOKEN", "1"}, {"NUDGE_API_BURST", "2"}}) {}
};

TEST_F(RateLimited, ATokenPastItsBurstIsAnswered429WithRetryAfterAndOthersAreNot) {
  const std::string busy = make_token("busy", "read");
  const std::string calm = make_token("calm", "read");
  EXPECT_EQ(as(busy, "GET", "/v1/reminders").status, 200);
  EXPECT_EQ(as(busy, "GET", "/v1/reminders").status, 200);
  const auto limited = as(busy, "GET", "/v1/reminders");
  ASSERT_EQ(limited.status, 429);
  EXPECT_EQ(limited.body["error"]["code"], "rate_limited");
  const std::string retry = limited.header("Retry-After");
  ASSERT_FALSE(retry.empty());
  EXPECT_EQ(retry.find_first_not_of("0123456789"), std::string::npos) << retry;
  EXPECT_GE(std::stoi(retry), 1);
  EXPECT_EQ(as(calm, "GET", "/v1/reminders").status, 200);  // a bucket per token
  EXPECT_EQ(get("/health").status, 200);                    // open routes are not limited
  EXPECT_TRUE(wait_until(std::chrono::seconds(std::stoi(retry) + 3),
                         [&] { return as(busy, "GET", "/v1/reminders").status == 200; }));
}

class AuthFailuresLimited : public Auth {
 protected:
  AuthFailuresLimited() : Auth({{"NUDGE_API_AUTH_FAILURES_PER_MINUTE", "3"}}) {}
};

// Anyone can make a well-formed token, and each unknown one costs a lookup: a peer past its
// failures waits, without one, and the burst is logged once, naming the peer, not the tokens.
TEST_F(AuthFailuresLimited, APeerWhoseTokensKeepFailingWaitsAndTheBurstIsLoggedOnce) {
  const std::string known = make_token("known", "read");
  ASSERT_EQ(as(known, "GET", "/v1/reminders").status, 200);  // verified, so cached
  const std::string seen = make_token("seen", "read");
  ASSERT_EQ(as(seen, "GET", "/v1/reminders").status, 200);
  const std::string fresh = make_token("fresh", "read");
  // A malformed token needs no lookup and is not counted; three unknown ones are.
  const std::vector<std::string> forged = {"nudge_not_a_token", api::new_token(), api::new_token(),
                                           api::new_token(), api::new_token()};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(as(forged[i], "GET", "/v1/reminders").status, 401);
  const auto held = as(forged[4], "GET", "/v1/reminders");
  ASSERT_EQ(held.status, 429) << held.body.dump();
  EXPECT_EQ(held.body["error"]["code"], "rate_limited");
  EXPECT_GE(std::stoi(held.header("Retry-After")), 1);
  EXPECT_EQ(as(forged[0], "GET", "/v1/reminders").status, 401) << "still told it is malformed";
  EXPECT_EQ(as(known, "GET", "/v1/reminders").status, 200) << "a cached token needs no lookup";
  // A revocation empties the cache: a token this nudge-api found before is looked up again, one
  // it never saw waits.
  ASSERT_EQ(token_command(db_.url(), {"revoke", "known"}).exit_code, 0);
  ASSERT_TRUE(wait_until(10s, [&] { return as(known, "GET", "/v1/reminders").status == 401; }));
  EXPECT_EQ(as(seen, "GET", "/v1/reminders").status, 200);
  EXPECT_EQ(as(fresh, "GET", "/v1/reminders").status, 429);
  EXPECT_EQ(get("/health").status, 200);
  ASSERT_TRUE(wait_until(
      10s, [&] { return api_->log().find("failed authentication") != std::string::npos; }));
  const std::string log = api_->log();
  EXPECT_EQ(log.find("failed authentication"), log.rfind("failed authentication")) << log;
  EXPECT_NE(log.find(R"("peer":"127.0.0.1")"), std::string::npos) << log;
  for (const auto& token : forged) EXPECT_EQ(log.find(token), std::string::npos) << log;
}

// Starting nudge-api with settings of its own, on a port of its own.
class Exposure : public DatabaseTest {
 protected:
  ChildProcess start(const std::map<std::string, std::string>& settings) {
    std::map<std::string, std::string> env = settings;
    env["NUDGE_DATABASE_URL"] = db_.url();
    env["NUDGE_API_PORT"] = std::to_string(port_);
    return ChildProcess(
        {program("nudge-api")}, env,
        (std::filesystem::temp_directory_path() / ("exposure-" + db_.name())).string());
  }
  int port_ = free_tcp_port();
};

TEST_F(Exposure, AuthOffOnEveryAddressIsRefusedAtStartSayingWhy) {
  for (const std::string host : {"0.0.0.0", "::"}) {
    ChildProcess api = start({{"NUDGE_API_AUTH", "off"}, {"NUDGE_API_HOST", host}});
    EXPECT_EQ(api.wait(30s), 2) << api.log();
    const std::string log = api.log();
    EXPECT_NE(log.find(host), std::string::npos) << log;
    EXPECT_NE(log.find("without a token"), std::string::npos) << log;
    EXPECT_NE(log.find("auth = \"token\""), std::string::npos) << log;
    EXPECT_EQ(log.find("listening"), std::string::npos) << log;
    api.remove_logs();
  }
}

TEST_F(Exposure, TokenAuthOnEveryAddressStartsAndAuthOffOnLoopbackWarns) {
  {
    ChildProcess api = start({{"NUDGE_API_HOST", "0.0.0.0"}});  // auth "token", the default
    httplib::Client client("127.0.0.1", port_);
    EXPECT_TRUE(wait_until(30s, [&] {
      const auto r = client.Get("/health");
      return r && r->status == 200;
    })) << api.log();
    const auto r = client.Get("/v1/reminders");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    api.signal(SIGTERM);
    EXPECT_EQ(api.wait(30s), 0) << api.log();
    api.remove_logs();
  }
  ChildProcess api = start({{"NUDGE_API_AUTH", "off"}, {"NUDGE_API_HOST", "127.0.0.1"}});
  httplib::Client client("127.0.0.1", port_);
  EXPECT_TRUE(wait_until(30s, [&] {
    const auto r = client.Get("/v1/reminders");
    return r && r->status == 200;
  })) << api.log();
  EXPECT_NE(api.log().find("auth is off"), std::string::npos) << api.log();
  api.signal(SIGTERM);
  EXPECT_EQ(api.wait(30s), 0);
  api.remove_logs();
}

// A port another program holds: the start fails saying why, not only that it failed.
TEST_F(Exposure, APortAlreadyTakenStopsTheStartSayingWhy) {
  httplib::Server holder;
  ASSERT_TRUE(holder.bind_to_port("127.0.0.1", port_));
  ChildProcess api = start({{"NUDGE_API_AUTH", "off"}, {"NUDGE_API_HOST", "127.0.0.1"}});
  EXPECT_EQ(api.wait(30s), 1) << api.log();
  EXPECT_NE(api.log().find(R"("error":"Address already in use")"), std::string::npos) << api.log();
  api.remove_logs();
}

}  // namespace
}  // namespace nudge::test
