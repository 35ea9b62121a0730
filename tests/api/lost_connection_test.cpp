// A request whose database connection is terminated under it (a restarted server, an
// operator's pg_terminate_backend) is answered 503 "try again" and logged, and the API serves
// the next request on a new connection (explore16a #10: it was not logged).

#include <chrono>
#include <future>
#include <string>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using namespace std::chrono_literals;
using LostConnection = ApiTest;

TEST_F(LostConnection, ATerminatedConnectionIsA503ThatIsLoggedAndTheNextRequestIsServed) {
  pqxx::connection operator_session(db_.url());
  pqxx::work lock(operator_session);
  lock.exec("LOCK TABLE nudge.reminders IN ACCESS EXCLUSIVE MODE");
  auto waiting = std::async(std::launch::async, [&] { return get("/v1/reminders"); });
  const auto cut = [&] {
    return value<long>(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
        "current_database() AND wait_event_type = 'Lock' AND pid <> $1",
        operator_session.backendpid());
  };
  ASSERT_TRUE(wait_until(10s, [&] { return cut() > 0; }));
  lock.abort();
  const Reply refused = waiting.get();
  EXPECT_EQ(refused.status, 503) << refused.body.dump();
  EXPECT_EQ(refused.body["error"]["code"], "unavailable");
  EXPECT_EQ(refused.header("Retry-After"), "1");
  EXPECT_TRUE(wait_until(5s, [&] {
    return api_->log().find("a request lost its database connection") != std::string::npos;
  })) << api_->log();
  EXPECT_EQ(get("/v1/reminders").status, 200);
}

}  // namespace
}  // namespace nudge::test
