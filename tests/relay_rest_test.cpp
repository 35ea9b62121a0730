// A worker's rest from an email relay that fails it: no emails while it lasts, doubling while
// the relay keeps failing, one probe after it, and an attempt it does not fail ends it.

#include "relay_rest.hpp"

#include <gtest/gtest.h>

namespace nudge::test {
namespace {

using namespace std::chrono_literals;

TEST(RelayRest, ARelayThatFailsRestsTheWorkersEmailsThenOneProbeGoesOut) {
  RelayRest rest;
  const auto t0 = RelayRest::Clock::now();
  EXPECT_EQ(rest.lanes(4, t0), 4);
  EXPECT_EQ(rest.ended(false, t0), RelayRest::Change::none);

  EXPECT_EQ(rest.ended(true, t0), RelayRest::Change::began);
  EXPECT_EQ(rest.rest(), RelayRest::kFirstRest);
  EXPECT_EQ(rest.lanes(4, t0 + 1s), 0);
  // Emails claimed before it began fail meanwhile: they do not lengthen it.
  EXPECT_EQ(rest.ended(true, t0 + 1s), RelayRest::Change::none);
  EXPECT_EQ(rest.rest(), RelayRest::kFirstRest);
  EXPECT_EQ(rest.lanes(4, t0 + 2s), 1);  // the probe

  // A failed probe doubles the rest, up to the longest.
  EXPECT_EQ(rest.ended(true, t0 + 2s), RelayRest::Change::none);
  EXPECT_EQ(rest.rest(), 2 * RelayRest::kFirstRest);
  EXPECT_EQ(rest.lanes(4, t0 + 5s), 0);
  auto at = t0 + 6s;
  for (int i = 0; i < 10; ++i) {
    rest.ended(true, at);
    at += rest.rest();
  }
  EXPECT_EQ(rest.rest(), RelayRest::kLongestRest);

  // An attempt the relay does not fail (a refusal of the message too) ends it.
  EXPECT_EQ(rest.ended(false, at), RelayRest::Change::ended);
  EXPECT_EQ(rest.lanes(4, at), 4);
  EXPECT_EQ(rest.ended(true, at), RelayRest::Change::began);
  EXPECT_EQ(rest.rest(), RelayRest::kFirstRest);
}

}  // namespace
}  // namespace nudge::test
