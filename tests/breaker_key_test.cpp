// The worker's breaker key of a webhook address agrees with nudge.target_host's (the keys
// /v1/targets lists), so that a failed attempt's log line names the host as the breaker does.

#include "breaker_key.hpp"

#include <gtest/gtest.h>

namespace nudge::test {
namespace {

TEST(BreakerKey, IsTheSchemeHostAndPortAsTheDatabaseWritesIt) {
  const std::pair<const char*, const char*> cases[] = {
      {"https://Hooks.Example.com/services/T0/B0/XXXX?token=s3cret",
       "https://hooks.example.com:443"},
      {"http://user:pw@127.0.0.1:18286/ok", "http://127.0.0.1:18286"},
      {"http://example.com", "http://example.com:80"},
      {"https://[::1]/a", "https://[::1]:443"},
      {"https://[::1]:8443/a#frag", "https://[::1]:8443"},
      {"HTTP://a.example:8080", "http://a.example:8080"},
      {"{{secret.slack}}", "{{secret.slack}}"},
  };
  for (const auto& [address, key] : cases) EXPECT_EQ(breaker_key(address), key) << address;
}

}  // namespace
}  // namespace nudge::test
