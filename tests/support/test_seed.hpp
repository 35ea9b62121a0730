#pragma once
// The seed of a randomised test: NUDGE_TEST_SEED when set (to replay a failed run), else a new
// one each run. Tests print or trace it, so a failure names the seed that replays it.

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

namespace nudge::test {

inline std::uint64_t test_seed() {
  const char* given = std::getenv("NUDGE_TEST_SEED");
  return given != nullptr ? std::stoull(given) : std::random_device{}();
}

}  // namespace nudge::test
