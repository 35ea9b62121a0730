// A request stuck behind a lock another session holds (a long migration, an ALTER TABLE) is
// answered 503 "try again" once [database] statement_timeout_ms has passed, instead of holding
// its request thread for as long as the lock lasts; then the API serves as before.

#include <chrono>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using namespace std::chrono_literals;

class StatementTimeout : public ApiTest {
 protected:
  StatementTimeout() : ApiTest({{"NUDGE_DATABASE_STATEMENT_TIMEOUT_MS", "300"}}) {}
};

TEST_F(StatementTimeout, ARequestWaitingBehindALockIsA503ThenServedOnceItIsGone) {
  ASSERT_EQ(get("/v1/reminders").status, 200);
  pqxx::connection operator_session(db_.url());
  pqxx::work lock(operator_session);
  lock.exec("LOCK TABLE nudge.reminders IN ACCESS EXCLUSIVE MODE");
  const auto started = std::chrono::steady_clock::now();
  const Reply refused = get("/v1/reminders");
  EXPECT_EQ(refused.status, 503) << refused.body.dump();
  EXPECT_EQ(refused.body["error"]["code"], "unavailable");
  EXPECT_EQ(refused.header("Retry-After"), "1");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s) << "bounded by the timeout";
  EXPECT_EQ(get("/livez").status, 200);
  lock.abort();
  EXPECT_EQ(get("/v1/reminders").status, 200);
}

}  // namespace
}  // namespace nudge::test
