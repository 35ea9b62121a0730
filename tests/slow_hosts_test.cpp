// Which webhook hosts a claim loop finds slow, and the patterns its claims pass over.

#include "slow_hosts.hpp"

#include <gtest/gtest.h>

namespace nudge {
namespace {

using namespace std::chrono_literals;
using Clock = SlowHosts::Clock;

TEST(SlowHosts, AHostIsATargetsOriginAsWritten) {
  EXPECT_EQ(SlowHosts::origin("https://hooks.example.com/a/b?c#d"), "https://hooks.example.com");
  EXPECT_EQ(SlowHosts::origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(SlowHosts::origin("http://u:p@h:1?x"), "http://u:p@h:1");
  EXPECT_EQ(SlowHosts::origin("{{secret.HOOK}}/path"), "");
  EXPECT_EQ(SlowHosts::origin("https://{{secret.HOST}}/path"), "");
  EXPECT_EQ(SlowHosts::origin("ops@example.com"), "");
  EXPECT_EQ(SlowHosts::origin("https:///x"), "");
}

// The patterns match the origin's targets only: not a longer host that starts the same way, and
// LIKE's own characters in the origin are taken literally.
TEST(SlowHosts, ThePatternsMatchThatOriginOnly) {
  EXPECT_EQ(SlowHosts::like_patterns("http://a.com:80"),
            (std::vector<std::string>{"http://a.com:80", "http://a.com:80/%", "http://a.com:80?%",
                                      "http://a.com:80#%"}));
  EXPECT_EQ(SlowHosts::like_patterns("http://a_b%c")[1], R"(http://a\_b\%c/%)");
}

TEST(SlowHosts, SlowOnAMovingAverageOfOneSecondOrMoreUntilItFallsOrIsForgotten) {
  SlowHosts hosts;
  const auto t0 = Clock::now();
  std::vector<SlowHosts::Change> changes;
  hosts.ended("http://fast:1/x", 0.05, t0);
  hosts.ended("http://slow:1/x", 6.0, t0);
  EXPECT_EQ(hosts.patterns({}, t0, changes), SlowHosts::like_patterns("http://slow:1"));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].origin, "http://slow:1");
  EXPECT_TRUE(changes[0].slow);
  EXPECT_DOUBLE_EQ(changes[0].average_seconds, 6.0);

  // One quick answer does not make it fast (6 * 0.7 + 0.1 * 0.3); several do.
  changes.clear();
  hosts.ended("http://slow:1/x", 0.1, t0 + 1s);
  EXPECT_FALSE(hosts.patterns({}, t0 + 1s, changes).empty());
  EXPECT_TRUE(changes.empty()) << "no change, no line";
  for (int i = 0; i < 8; ++i) hosts.ended("http://slow:1/x", 0.1, t0 + 2s);
  EXPECT_TRUE(hosts.patterns({}, t0 + 2s, changes).empty());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].slow);

  // Forgotten a minute after its last delivery ended.
  changes.clear();
  hosts.ended("http://slow:1/x", 9.0, t0 + 3s);
  EXPECT_FALSE(hosts.patterns({}, t0 + 3s, changes).empty());
  EXPECT_TRUE(hosts.patterns({}, t0 + 3s + SlowHosts::kForgetAfter, changes).empty());
}

// A receiver that hangs has no ended delivery yet: one running for a second makes it slow.
TEST(SlowHosts, ADeliveryRunningForASecondMakesItsHostSlow) {
  SlowHosts hosts;
  const auto t0 = Clock::now();
  std::vector<SlowHosts::Change> changes;
  const std::vector<SlowHosts::Running> running{{"http://hang:1/a", t0}, {"{{secret.HOOK}}", t0}};
  EXPECT_TRUE(hosts.patterns(running, t0 + 999ms, changes).empty());
  EXPECT_EQ(hosts.patterns(running, t0 + 1s, changes), SlowHosts::like_patterns("http://hang:1"));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_DOUBLE_EQ(changes[0].average_seconds, 0.0);
  EXPECT_DOUBLE_EQ(changes[0].running_seconds, 1.0) << "how long it has run";
}

}  // namespace
}  // namespace nudge
