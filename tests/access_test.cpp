// Who may call what: the route table's lookup, scope names, the rate limiter's buckets, the
// token cache, and where nudge-api may run without auth. No database needed.

#include "access.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "auth_failures.hpp"
#include "exposure.hpp"
#include "rate_limiter.hpp"
#include "token_cache.hpp"

namespace nudge::api {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(RouteAccess, RegisteredPatternsFindTheirTemplates) {
  const auto* pause = route_access("POST", "/v1/reminders/([^/]+)/pause");
  ASSERT_NE(pause, nullptr);
  EXPECT_EQ(pause->path, "/v1/reminders/{id}/pause");
  EXPECT_EQ(pause->scope, Scope::write);
  const auto* contact = route_access("GET", R"(/v1/contacts/([^/]+)/([^/]+)/([^/]+))");
  ASSERT_NE(contact, nullptr);
  EXPECT_EQ(contact->path, "/v1/contacts/{entity_type}/{entity_id}/{channel}");
  EXPECT_EQ(contact->scope, Scope::read);
  EXPECT_EQ(route_access("GET", "/v1/audit")->scope, Scope::admin);
  EXPECT_EQ(route_access("GET", "/health")->scope, Scope::none);
  EXPECT_EQ(route_access("GET", "/readyz")->scope, Scope::none);
  EXPECT_EQ(route_access("GET", "/metrics")->scope, Scope::metrics);
  // The dashboard's and the docs' files are open; the overview they show needs read.
  EXPECT_EQ(route_access("GET", "/")->scope, Scope::none);
  EXPECT_EQ(route_access("GET", R"(/ui/([A-Za-z0-9_.-]+))")->scope, Scope::none);
  EXPECT_EQ(route_access("GET", R"(/docs/([A-Za-z0-9_.-]+))")->scope, Scope::none);
  EXPECT_EQ(route_access("GET", "/v1/overview")->scope, Scope::read);
}

TEST(RouteAccess, UnknownRoutesAndMethodsHaveNoEntry) {
  EXPECT_EQ(route_access("DELETE", "/v1/reminders/([^/]+)"), nullptr);
  EXPECT_EQ(route_access("GET", "/v1/tokens"), nullptr);
  EXPECT_EQ(route_access("POST", "/health"), nullptr);
}

TEST(Scopes, NamesParseAndPrintInOneOrder) {
  EXPECT_EQ(parse_scopes("write,read"), scope_bit(Scope::read) | scope_bit(Scope::write));
  EXPECT_EQ(scope_names(*parse_scopes("admin,write,read,read")), "read,write,admin");
  EXPECT_EQ(scope_names(*parse_scopes("metrics,read")), "read,metrics");
  for (const std::string bad : {"", ",", "read,", ",read", "root", "read, write", "READ"})
    EXPECT_FALSE(parse_scopes(bad)) << bad;
}

TEST(Scopes, NoScopeIncludesAnother) {
  const Scopes admin = *parse_scopes("admin");
  EXPECT_FALSE(holds(admin, Scope::read));
  EXPECT_FALSE(holds(admin, Scope::write));
  EXPECT_TRUE(holds(admin, Scope::admin));
  EXPECT_FALSE(holds(admin, Scope::metrics));
  const Scopes scraper = *parse_scopes("metrics");
  EXPECT_FALSE(holds(scraper, Scope::read));
  EXPECT_TRUE(holds(scraper, Scope::metrics));
  EXPECT_TRUE(holds(0, Scope::none));
}

// GET /v1/auth needs a token, whatever it holds; "any" is no scope a token can be given.
TEST(Scopes, AnyIsHeldByEveryTokenAndGivenToNone) {
  EXPECT_EQ(route_access("GET", "/v1/auth")->scope, Scope::any);
  for (const std::string names : {"read", "write", "admin", "metrics", "read,write"})
    EXPECT_TRUE(holds(*parse_scopes(names), Scope::any)) << names;
  EXPECT_FALSE(holds(0, Scope::any));
  EXPECT_FALSE(parse_scopes("any"));
  EXPECT_EQ(scope_names(kEveryScope), "read,write,admin,metrics");
}

TEST(RateLimit, BurstThenOneRequestPerInterval) {
  RateLimiter limiter(2, 3);  // 2 a second, 3 at once
  const auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.take("ci", t0), 0) << i;
  EXPECT_EQ(limiter.take("ci", t0), 1);  // half a second to go: rounded up to 1
  EXPECT_EQ(limiter.take("ci", t0 + 499ms), 1);
  EXPECT_EQ(limiter.take("ci", t0 + 500ms), 0);
  EXPECT_EQ(limiter.take("ci", t0 + 500ms), 1);
  EXPECT_EQ(limiter.take("ci", t0 + 10s), 0);  // refilled to the burst, no more
  EXPECT_EQ(limiter.take("ci", t0 + 10s), 0);
  EXPECT_EQ(limiter.take("ci", t0 + 10s), 0);
  EXPECT_EQ(limiter.take("ci", t0 + 10s), 1);
}

TEST(RateLimit, RetryAfterCountsWholeSecondsAtASlowRate) {
  RateLimiter limiter(1, 1);
  const auto t0 = Clock::now();
  EXPECT_EQ(limiter.take("ci", t0), 0);
  EXPECT_EQ(limiter.take("ci", t0), 1);
  EXPECT_EQ(limiter.take("ci", t0 + 100ms), 1);
}

TEST(RateLimit, EachKeyHasItsOwnBucketAndZeroMeansNoLimit) {
  RateLimiter limiter(1, 1);
  const auto t0 = Clock::now();
  EXPECT_EQ(limiter.take("a", t0), 0);
  EXPECT_GT(limiter.take("a", t0), 0);
  EXPECT_EQ(limiter.take("b", t0), 0);
  RateLimiter unlimited(0, 1);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(unlimited.take("a", t0), 0);
}

TEST(RateLimit, WaitTellsWithoutTakingAndARateBelowOneASecondWorks) {
  RateLimiter limiter(0.05, 2);  // 3 a minute, 2 at once
  const auto t0 = Clock::now();
  EXPECT_EQ(limiter.wait("peer", t0), 0);
  EXPECT_EQ(limiter.wait("peer", t0), 0);
  EXPECT_EQ(limiter.take("peer", t0), 0);
  EXPECT_EQ(limiter.take("peer", t0), 0);
  EXPECT_EQ(limiter.wait("peer", t0), 20);
  EXPECT_EQ(limiter.wait("peer", t0 + 19s), 1);
  EXPECT_EQ(limiter.wait("peer", t0 + 20s), 0);
}

TEST(RateLimit, ManyKeysForgetTheirFullBucketsButNotTheOthers) {
  RateLimiter limiter(1, 1);
  const auto t0 = Clock::now();
  EXPECT_EQ(limiter.take("busy", t0 + 20s), 0);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(limiter.take("p" + std::to_string(i), t0), 0);
  // Past 10,000 keys the next new one sweeps: every "p" bucket is full again at t0 + 10 s.
  EXPECT_EQ(limiter.take("new", t0 + 20s), 0);
  EXPECT_EQ(limiter.take("busy", t0 + 20s), 1) << "an empty bucket is kept";
}

TEST(AuthFailuresTest, AnIpv6PeerIsCountedByItsSlash64AndAnIpv4OneByItsAddress) {
  EXPECT_EQ(AuthFailures::peer_key("203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(AuthFailures::peer_key("2001:db8:0:12:aaaa::1"), "2001:db8:0:12::/64");
  EXPECT_EQ(AuthFailures::peer_key("2001:db8:0:12:ffff:1:2:3"), "2001:db8:0:12::/64");
  EXPECT_EQ(AuthFailures::peer_key("::1"), "0:0:0:0::/64");
  EXPECT_EQ(AuthFailures::peer_key("::ffff:203.0.113.7"), "::ffff:203.0.113.7");
  EXPECT_EQ(AuthFailures::peer_key(""), "");
}

TEST(AuthFailuresTest, APeerPastItsFailuresWaitsAndOtherPeersDoNot) {
  AuthFailures failures(2);  // 2 a minute
  const auto t0 = Clock::now();
  failures.record("2001:db8::1", "test", true, t0);
  failures.record("2001:db8::4", "malformed", false, t0);  // costs nothing: not counted
  failures.record("2001:db8::2", "test", true, t0);        // the same /64
  EXPECT_EQ(failures.wait("2001:db8::3", t0), 30);
  EXPECT_EQ(failures.wait("2001:db9::1", t0), 0);
  EXPECT_EQ(failures.wait("2001:db8::3", t0 + 30s), 0);
  EXPECT_EQ(AuthFailures(0).wait("2001:db8::1", t0), 0);
}

TEST(TokenCacheTest, EntriesLiveTheirTimeAndAClearEndsThem) {
  TokenCache cache(30s);
  const auto t0 = Clock::now();
  cache.put("h1", {"ci", scope_bit(Scope::read)}, t0, cache.generation());
  ASSERT_TRUE(cache.find("h1", t0 + 29s));
  EXPECT_EQ(cache.find("h1", t0 + 29s)->name, "ci");
  EXPECT_FALSE(cache.find("h1", t0 + 30s));
  EXPECT_FALSE(cache.find("h2", t0));
  cache.clear();
  EXPECT_FALSE(cache.find("h1", t0));
}

TEST(TokenCacheTest, ALookupThatACleanOvertookIsNotCached) {
  TokenCache cache(30s);
  const auto before = cache.generation();
  cache.clear();  // a revocation heard while the lookup ran
  cache.put("h1", {"ci", scope_bit(Scope::read)}, Clock::now(), before);
  EXPECT_FALSE(cache.find("h1", Clock::now()));
}

TEST(TokenCacheTest, UsesAreReportedAtMostOnceAMinutePerToken) {
  TokenCache cache(1h);
  const auto t0 = Clock::now();
  cache.put("h1", {"ci", 0}, t0, cache.generation());
  cache.put("h2", {"cd", 0}, t0, cache.generation());
  EXPECT_EQ(cache.take_used().size(), 2u);  // first seen: used now
  for (int i = 0; i < 10; ++i) cache.find("h1", t0 + std::chrono::seconds(i));
  EXPECT_TRUE(cache.take_used().empty());
  cache.find("h1", t0 + 61s);
  cache.find("h1", t0 + 62s);
  EXPECT_EQ(cache.take_used(), std::vector<std::string>{"h1"});
}

TEST(Exposure, LoopbackAddressesAreTheOnlyOnesWithoutAuth) {
  for (const std::string host : {"127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"})
    EXPECT_TRUE(loopback_host(host)) << host;
  for (const std::string host : {"0.0.0.0", "::", "10.0.0.1", "192.168.1.5", "128.0.0.1",
                                 "example.com", "localhost.example.com", "::ffff:10.0.0.1"})
    EXPECT_FALSE(loopback_host(host)) << host;
}

TEST(Exposure, AuthOffOnAReachableAddressIsRefusedSayingWhyAndWhatToDo) {
  ApiConfig api;
  api.host = "0.0.0.0";
  EXPECT_FALSE(exposure_problem(api));  // auth "token", the default
  api.auth = "off";
  const auto problem = exposure_problem(api);
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("0.0.0.0"), std::string::npos) << *problem;
  EXPECT_NE(problem->find("without a token"), std::string::npos) << *problem;
  EXPECT_NE(problem->find("auth = \"token\""), std::string::npos) << *problem;
  api.host = "127.0.0.1";
  EXPECT_FALSE(exposure_problem(api));
}

}  // namespace
}  // namespace nudge::api
