// nudge.preview_reminder: the fires of a reminder created at an instant, as
// POST /v1/schedules/preview lists them (tests/api/preview_test.cpp covers the route).

#include <string>
#include <utility>
#include <vector>

#include "support/test_database.hpp"

namespace nudge::test {
namespace {

class PreviewReminder : public DatabaseTest {
 protected:
  std::vector<std::string> fires(const std::string& args) {
    std::vector<std::string> out;
    for (const auto& row : sql("SELECT t FROM nudge.preview_reminder(" + args + ") t"))
      out.push_back(row[0].as<std::string>());
    return out;
  }
};

TEST_F(PreviewReminder, AnIntervalWithoutRunAtStartsAtTheInstantOfCreation) {
  EXPECT_EQ(fires("'recurring', '2026-01-01T00:00:00Z', 3, p_interval_seconds => 3600"),
            (std::vector<std::string>{"2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00",
                                      "2026-01-01T02:00:00+00:00"}));
}

TEST_F(PreviewReminder, AFirstFireAlreadyPastFiresAtCreationOnce) {
  EXPECT_EQ(fires("'one_time', '2026-01-01T00:00:00Z', p_run_at => '2025-12-31T00:00:00Z'"),
            (std::vector<std::string>{"2026-01-01T00:00:00+00:00"}));
  EXPECT_EQ(fires("'one_time', '2026-01-01T00:00:00Z', p_run_at => '2026-01-01T00:00:00Z'"),
            (std::vector<std::string>{"2026-01-01T00:00:00+00:00"}));
  // A cron schedule lists it in its zone, then goes on with its own times.
  EXPECT_EQ(fires("'cron', '2026-01-01T00:00:00Z', 2, p_cron => '0 9 * * *',"
                  " p_timezone => 'Europe/Berlin', p_run_at => '2025-12-30T00:00:00Z'"),
            (std::vector<std::string>{"2026-01-01T01:00:00+01:00", "2026-01-01T09:00:00+01:00"}));
}

TEST_F(PreviewReminder, MaxFiresAndEndsAtCutTheListAndAFireAtEndsAtHappens) {
  EXPECT_EQ(fires("'recurring', '2026-01-01T00:00:00Z', 5, p_interval_seconds => 3600,"
                  " p_max_fires => 4, p_ends_at => '2026-01-01T02:00:00Z'"),
            (std::vector<std::string>{"2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00",
                                      "2026-01-01T02:00:00+00:00"}));
  EXPECT_EQ(fires("'recurring', '2026-01-01T00:00:00Z', 5, p_interval_seconds => 3600,"
                  " p_max_fires => 2"),
            (std::vector<std::string>{"2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00"}));
}

// A first fire already past: the claim at `from` takes every occurrence due then, one at `from`
// too, so the schedule goes on strictly after it.
TEST_F(PreviewReminder, AnOccurrenceAtFromIsPartOfTheCatchUp) {
  EXPECT_EQ(fires("'recurring', '2026-01-01T01:00:00Z', 3, '2026-01-01T00:00:00Z', 900"),
            (std::vector<std::string>{"2026-01-01T01:00:00+00:00", "2026-01-01T01:15:00+00:00",
                                      "2026-01-01T01:30:00+00:00"}));
}

// skip: no fire for a first occurrence more than the threshold past, one within it, and one for
// each later occurrence within it.
TEST_F(PreviewReminder, SkipLeavesOutAFirstFireMissedByMoreThanTheThreshold) {
  const std::string hourly = "'recurring', '2026-01-01T10:00:00Z', 2, p_interval_seconds => 3600";
  EXPECT_EQ(fires(hourly + ", p_run_at => '2026-01-01T09:58:00Z', p_misfire_policy => 'skip'"),
            (std::vector<std::string>{"2026-01-01T10:58:00+00:00", "2026-01-01T11:58:00+00:00"}));
  EXPECT_EQ(fires(hourly + ", p_run_at => '2026-01-01T09:58:00Z', p_misfire_policy => 'skip',"
                           " p_misfire_threshold_seconds => 300"),
            (std::vector<std::string>{"2026-01-01T10:00:00+00:00", "2026-01-01T10:58:00+00:00"}));
  // Two occurrences past the threshold, then one 30 s before from: skipped up to it, it fires.
  EXPECT_EQ(fires(hourly + ", p_run_at => '2026-01-01T07:59:30Z', p_misfire_policy => 'skip'"),
            (std::vector<std::string>{"2026-01-01T10:00:00+00:00", "2026-01-01T10:59:30+00:00"}));
  // Every 10 s from 150 s before: the six within the threshold fire each, at from.
  EXPECT_EQ(fires("'recurring', '2026-01-01T10:00:00Z', 8, '2026-01-01T09:57:35Z', 10,"
                  " p_misfire_policy => 'skip'"),
            (std::vector<std::string>{"2026-01-01T10:00:00+00:00", "2026-01-01T10:00:00+00:00",
                                      "2026-01-01T10:00:00+00:00", "2026-01-01T10:00:00+00:00",
                                      "2026-01-01T10:00:00+00:00", "2026-01-01T10:00:00+00:00",
                                      "2026-01-01T10:00:05+00:00", "2026-01-01T10:00:15+00:00"}));
}

// fire_all: one fire per occurrence due by `from`, the newest fire_all_cap, and those up to
// ends_at only, listed at `from` even when it is past ends_at (the claim still fires them).
TEST_F(PreviewReminder, FireAllListsEachOccurrenceDueUpToTheCapAndEndsAt) {
  const std::string hourly =
      "'recurring', '2026-01-01T10:00:00Z', 6, '2026-01-01T06:30:00Z', 3600,"
      " p_misfire_policy => 'fire_all'";
  const std::string at = "2026-01-01T10:00:00+00:00";
  EXPECT_EQ(fires(hourly), (std::vector<std::string>{at, at, at, at, "2026-01-01T10:30:00+00:00",
                                                     "2026-01-01T11:30:00+00:00"}));
  EXPECT_EQ(
      fires(hourly + ", p_fire_all_cap => 2"),
      (std::vector<std::string>{at, at, "2026-01-01T10:30:00+00:00", "2026-01-01T11:30:00+00:00",
                                "2026-01-01T12:30:00+00:00", "2026-01-01T13:30:00+00:00"}));
  EXPECT_EQ(fires(hourly + ", p_ends_at => '2026-01-01T07:30:00Z'"),
            (std::vector<std::string>{at, at}));
  EXPECT_EQ(fires(hourly + ", p_max_fires => 3"), (std::vector<std::string>{at, at, at}));
  // A cron's in its zone: 04:00 and 08:00 in Berlin were due at 11:00 there.
  EXPECT_EQ(
      fires("'cron', '2026-01-01T10:00:00Z', 3, '2026-01-01T00:00:00Z', p_cron => '0 */4 * * *',"
            " p_timezone => 'Europe/Berlin', p_misfire_policy => 'fire_all'"),
      (std::vector<std::string>{"2026-01-01T11:00:00+01:00", "2026-01-01T11:00:00+01:00",
                                "2026-01-01T12:00:00+01:00"}));
}

TEST_F(PreviewReminder, APolicyThresholdOrCapOutOfRangeIsRefusedNamingIt) {
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"'one_time', p_run_at => '2030-01-01T00:00:00Z', p_misfire_policy => 'fire_all'",
            "misfire_policy: is only for recurring and cron reminders (one_time takes fire_once)"},
           {"'recurring', p_interval_seconds => 60, p_misfire_policy => 'later'",
            "misfire_policy: must be one of fire_once, skip, fire_all"},
           {"'recurring', p_interval_seconds => 60, p_misfire_threshold_seconds => 0",
            "misfire_threshold_seconds: must be 1 to 86400"},
           {"'recurring', p_interval_seconds => 60, p_fire_all_cap => 10001",
            "fire_all_cap: must be 1 to 10000"}}) {
    try {
      fires(args);
      ADD_FAILURE() << args << " was accepted";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "22023");
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

TEST_F(PreviewReminder, ABadCountIsRefusedNamingIt) {
  try {
    fires("'recurring', '2026-01-01T00:00:00Z', 0, p_interval_seconds => 60");
    FAIL() << "a count of 0 was accepted";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "22023");
    EXPECT_NE(std::string(e.what()).find("count: must be 1 to 100"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nudge::test
