// nudge.preview_reminder: the fires of a reminder created at an instant, as
// POST /v1/schedules/preview lists them (tests/api/preview_test.cpp covers the route).

#include <string>
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
