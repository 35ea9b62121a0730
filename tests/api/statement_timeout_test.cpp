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
  EXPECT_NE(
      refused.body["error"]["message"].get<std::string>().find("statement_timeout_ms (300 ms)"),
      std::string::npos)
      << refused.body.dump();
  EXPECT_EQ(refused.header("Retry-After"), "1") << "its 300 ms, rounded up to a second";
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s) << "bounded by the timeout";
  EXPECT_EQ(get("/livez").status, 200);
  lock.abort();
  EXPECT_EQ(get("/v1/reminders").status, 200);
}

// A row an application's open transaction holds (a flag it set and has not committed): the
// request waits [database] lock_timeout_ms, not the whole statement timeout, and says why
// (explore19a #4: 40 such requests held every thread 10 s each).
class LockTimeout : public ApiTest {
 protected:
  LockTimeout() : ApiTest({{"NUDGE_DATABASE_LOCK_TIMEOUT_MS", "300"}}) {}
};

TEST_F(LockTimeout, ARequestWaitingForARowAnotherTransactionHoldsIsA503SayingSo) {
  ASSERT_EQ(put("/v1/flags/paid:o1", R"({"value": false})").status, 200);
  pqxx::connection app(db_.url());
  pqxx::work held(app);
  held.exec("SELECT nudge.set_flag('paid:o1', true)");
  const auto started = std::chrono::steady_clock::now();
  const Reply refused = put("/v1/flags/paid:o1", R"({"value": false})");
  EXPECT_EQ(refused.status, 503) << refused.body.dump();
  EXPECT_NE(refused.body["error"]["message"].get<std::string>().find("another transaction holds"),
            std::string::npos)
      << refused.body.dump();
  EXPECT_EQ(refused.header("Retry-After"), "1");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s) << "not the 10 s statement timeout";
  held.commit();
  const Reply done = put("/v1/flags/paid:o1", R"({"value": false})");
  EXPECT_EQ(done.status, 200) << done.body.dump();
}

}  // namespace
}  // namespace nudge::test
