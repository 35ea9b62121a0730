// What a log line adds to an error on a prepared statement the session no longer has: under a
// pooler in transaction mode every claim failed with 'prepared statement "..." already exists',
// and nothing said why (explore17a #2).

#include <gtest/gtest.h>

#include <stdexcept>

#include "nudge/database.hpp"

namespace {

TEST(SessionNotKeptHint, NamesThePoolerForAPreparedStatementTheSessionLost) {
  for (const char* state : {"42P05", "26000"}) {
    SCOPED_TRACE(state);
    const pqxx::sql_error e("prepared statement \"claim\" already exists", "", state);
    const std::string hint = nudge::session_not_kept_hint(e);
    EXPECT_NE(hint.find("a pooler in transaction mode"), std::string::npos) << hint;
    EXPECT_NE(hint.find("session mode"), std::string::npos) << hint;
  }
}

TEST(SessionNotKeptHint, SaysNothingOfAnyOtherError) {
  EXPECT_EQ(nudge::session_not_kept_hint(pqxx::sql_error("permission denied", "", "42501")), "");
  EXPECT_EQ(nudge::session_not_kept_hint(std::runtime_error("no database")), "");
}

}  // namespace
