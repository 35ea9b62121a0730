// The ids of stream messages: fixed width, so they increase as strings exactly as the positions
// they name increase; only ids this server makes are read back.

#include <gtest/gtest.h>

#include "stream_changes.hpp"

namespace nudge::api {
namespace {

TEST(StreamEventId, ReadsBackThePositionItNames) {
  for (const Position p :
       {Position{0, 0, 0}, Position{1234, 7, 1}, Position{~0ull, INT64_MAX, INT32_MAX}}) {
    const auto back = parse_event_id(event_id(p));
    ASSERT_TRUE(back.has_value()) << event_id(p);
    EXPECT_EQ(*back, p);
  }
  EXPECT_EQ(event_id({0x4d2, 7, 12}), "00000000000004d2-0000000000000007-0000000c");
}

TEST(StreamEventId, IncreasesAsAStringWhenThePositionIncreases) {
  const Position order[] = {{9, 100, 1}, {9, 100, 2},  {9, 101, 1},
                            {10, 1, 0},  {0x10, 0, 0}, {0x100000000ull, 2, 1}};
  for (std::size_t i = 1; i < std::size(order); ++i) {
    EXPECT_LT(order[i - 1], order[i]);
    EXPECT_LT(event_id(order[i - 1]), event_id(order[i]));
  }
}

TEST(StreamEventId, RefusesTextThatIsNotAnId) {
  for (const std::string bad :
       {"", "42", "00000000000004d2-0000000000000007", "00000000000004d2-0000000000000007-0000001",
        "00000000000004D2-0000000000000007-00000001", "00000000000004d2_0000000000000007-00000001",
        "00000000000004d2-8000000000000000-00000001", "00000000000004d2-0000000000000007-80000000",
        "00000000000004d2-0000000000000007-00000001 "}) {
    EXPECT_FALSE(parse_event_id(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace nudge::api
