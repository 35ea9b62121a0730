// Lateness is measured against the occurrence's time exactly as the database wrote it.

#include <gtest/gtest.h>

#include <chrono>

#include "fire.hpp"

namespace nudge {
namespace {

using std::chrono::sys_days;
using namespace std::chrono;

// 2026-11-22 09:00:00 UTC
const auto kNine = sys_days(year{2026} / November / 22) + hours(9);

TEST(SecondsSince, WholeSeconds) {
  EXPECT_DOUBLE_EQ(*seconds_since("2026-11-22 09:00:00+00", kNine + milliseconds(1500)), 1.5);
}

TEST(SecondsSince, FractionsDownToMicroseconds) {
  EXPECT_NEAR(*seconds_since("2026-11-22 08:59:59.5+00", kNine), 0.5, 1e-9);
  EXPECT_NEAR(*seconds_since("2026-11-22 08:59:59.000001+00", kNine), 0.999999, 1e-9);
}

TEST(SecondsSince, AnOccurrenceAheadIsNegative) {
  EXPECT_DOUBLE_EQ(*seconds_since("2026-11-22 09:00:02+00", kNine), -2);
}

TEST(SecondsSince, AcrossAMonthAndALeapDay) {
  const auto march = sys_days(year{2028} / March / 1);
  EXPECT_DOUBLE_EQ(*seconds_since("2028-02-29 23:59:59+00", march), 1);
}

TEST(SecondsSince, TextInAnotherFormIsNotRead) {
  for (const char* text :
       {"", "2026-11-22", "2026-11-22T09:00:00Z", "2026-11-22 09:00:00+01",
        "2026-13-22 09:00:00+00", "2026-02-30 09:00:00+00", "20x6-11-22 09:00:00+00", "infinity"}) {
    EXPECT_FALSE(seconds_since(text, kNine)) << text;
  }
}

}  // namespace
}  // namespace nudge
