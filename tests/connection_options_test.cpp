#include "nudge/connection_options.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

using nudge::with_connection_defaults;

constexpr const char* kAll =
    "connect_timeout=10&keepalives=1&keepalives_idle=15&keepalives_interval=5&keepalives_count=3"
    "&tcp_user_timeout=30000";

class ConnectionOptions : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("PGCONNECT_TIMEOUT"); }
  void TearDown() override { ::unsetenv("PGCONNECT_TIMEOUT"); }
};

TEST_F(ConnectionOptions, AUrlWithoutQueryGetsThemAll) {
  EXPECT_EQ(with_connection_defaults("postgresql://u@db:5432/app"),
            std::string("postgresql://u@db:5432/app?") + kAll);
  EXPECT_EQ(with_connection_defaults("postgres://db/app"),
            std::string("postgres://db/app?") + kAll);
}

TEST_F(ConnectionOptions, AUrlsOwnParametersStayAndWin) {
  EXPECT_EQ(with_connection_defaults("postgresql://db/app?sslmode=require&keepalives_idle=60"),
            "postgresql://db/app?sslmode=require&keepalives_idle=60&connect_timeout=10"
            "&keepalives=1&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=30000");
  // A name that only begins like one of them is another parameter.
  EXPECT_EQ(with_connection_defaults("postgresql://db/app?keepalives_idlex=1&keepalives=0"),
            "postgresql://db/app?keepalives_idlex=1&keepalives=0&connect_timeout=10"
            "&keepalives_idle=15&keepalives_interval=5&keepalives_count=3"
            "&tcp_user_timeout=30000");
}

TEST_F(ConnectionOptions, AKeyValueStringGetsThemFirstSoItsOwnWin) {
  EXPECT_EQ(with_connection_defaults("host=db dbname=app keepalives_idle=60"),
            "connect_timeout=10 keepalives=1 keepalives_idle=15 keepalives_interval=5 "
            "keepalives_count=3 tcp_user_timeout=30000 host=db dbname=app keepalives_idle=60");
}

TEST_F(ConnectionOptions, PgConnectTimeoutInTheEnvironmentIsLeftToDecide) {
  ::setenv("PGCONNECT_TIMEOUT", "3", 1);
  EXPECT_EQ(with_connection_defaults("postgresql://db/app"),
            "postgresql://db/app?keepalives=1&keepalives_idle=15&keepalives_interval=5"
            "&keepalives_count=3&tcp_user_timeout=30000");
}

}  // namespace
