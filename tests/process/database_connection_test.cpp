// Every connection Nudge opens (open_connection) finds out within seconds that a server stopped
// answering: read off the socket of a real connection.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "nudge/database.hpp"
#include "support/test_database.hpp"

namespace {

int option(int fd, int level, int name) {
  int value = -1;
  socklen_t size = sizeof value;
  EXPECT_EQ(::getsockopt(fd, level, name, &value, &size), 0);
  return value;
}

TEST(DatabaseConnection, ItsSocketProbesAnIdleServerAndGivesUpOnUnacknowledgedData) {
  nudge::test::TestDatabase db;
  const auto conn = nudge::open_connection(db.url(), "connection-test");
  const int fd = conn->sock();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(option(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPIDLE), 15);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPINTVL), 5);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 30000);
}

TEST(DatabaseConnection, TheUrlsOwnSettingsWin) {
  nudge::test::TestDatabase db;
  const std::string url = db.url() + (db.url().find('?') == std::string::npos ? "?" : "&") +
                          "keepalives_idle=60&tcp_user_timeout=0";
  const auto conn = nudge::open_connection(url, "connection-test");
  EXPECT_EQ(option(conn->sock(), IPPROTO_TCP, TCP_KEEPIDLE), 60);
  EXPECT_EQ(option(conn->sock(), IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
}

// What the database or role gives every session is not what Nudge's run with (see
// open_connection): each of these is set on the session, whatever the database says.
TEST(DatabaseConnection, ItsSessionSettingsAreNudgesWhateverTheDatabaseSays) {
  nudge::test::TestDatabase db;
  {
    pqxx::connection admin(db.url());
    pqxx::nontransaction(admin).exec(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %1$I SET search_path = public, pg_catalog', "
        "current_database()); "
        "EXECUTE format('ALTER DATABASE %1$I SET lock_timeout = 1000', current_database()); "
        "EXECUTE format('ALTER DATABASE %1$I SET idle_session_timeout = 5000', "
        "current_database()); "
        "EXECUTE format('ALTER DATABASE %1$I SET default_transaction_isolation = serializable', "
        "current_database()); "
        "EXECUTE format('ALTER DATABASE %1$I SET jit = on', current_database()); "
        "EXECUTE format('ALTER DATABASE %1$I SET TimeZone = %2$L', current_database(), "
        "'Asia/Kolkata'); END $$");
  }
  const auto conn = nudge::open_connection(db.url(), "connection-test");
  pqxx::nontransaction tx(*conn);
  EXPECT_EQ(tx.exec1("SELECT current_setting('search_path') || ' | ' || "
                     "current_setting('lock_timeout') || ' | ' || "
                     "current_setting('idle_session_timeout') || ' | ' || "
                     "current_setting('default_transaction_isolation') || ' | ' || "
                     "current_setting('jit') || ' | ' || current_setting('TimeZone')")[0]
                .as<std::string>(),
            "pg_catalog, pg_temp | 0 | 0 | read committed | off | UTC");
}

}  // namespace
