// Schedules in words, in SQL: the canonical sentence of each kind of schedule
// (nudge.describe_schedule), the one a stored reminder carries (nudge.reminder_json, with the
// words of its cron expression kept by a trigger), the moments of parsed phrases
// (nudge.resolve_moment), and the two engine changes the words needed: L, the last day of the
// month, and a preview that shows a cron occurrence exactly at run_at.
//
// Berlin springs forward on 2026-03-29 (02:00 CET -> 03:00 CEST, at 01:00Z) and falls back on
// 2026-10-25 (03:00 CEST -> 02:00 CET, at 01:00Z).

#include <optional>

#include "support/test_database.hpp"

namespace nudge::test {
namespace {

class ScheduleText : public DatabaseTest {
 protected:
  std::vector<std::string> preview(const std::string& cron, const std::string& from, int count,
                                   const std::optional<std::string>& run_at = std::nullopt,
                                   const std::string& zone = "UTC") {
    std::vector<std::string> out;
    for (const auto& row : sql("SELECT t FROM nudge.preview_schedule('cron', $1::timestamptz, $2, "
                               "$3::timestamptz, p_cron => $4, p_timezone => $5) t",
                               from, count, run_at, cron, zone))
      out.push_back(row[0].as<std::string>());
    return out;
  }
};

TEST_F(ScheduleText, CronLFiresOnTheLastDayOfEveryMonthLeapYearsIncluded) {
  EXPECT_EQ(preview("0 9 L * *", "2027-12-15 00:00Z", 4),
            (std::vector<std::string>{"2027-12-31T09:00:00+00:00", "2028-01-31T09:00:00+00:00",
                                      "2028-02-29T09:00:00+00:00", "2028-03-31T09:00:00+00:00"}));
  EXPECT_EQ(preview("30 8 15,l * *", "2026-04-01 00:00Z", 3),
            (std::vector<std::string>{"2026-04-15T08:30:00+00:00", "2026-04-30T08:30:00+00:00",
                                      "2026-05-15T08:30:00+00:00"}))
      << "with other days, and in lower case";
  EXPECT_EQ(preview("0 0 L 2 *", "2026-01-01 00:00Z", 2),
            (std::vector<std::string>{"2026-02-28T00:00:00+00:00", "2027-02-28T00:00:00+00:00"}))
      << "a month whose days would not all exist";
}

TEST_F(ScheduleText, CronLIsOnlyTheDayOfTheMonth) {
  for (const char* expr :
       {"L * * * *", "0 L * * *", "0 0 * L *", "0 0 * * L", "0 0 L/2 * *", "0 0 1-L * *"}) {
    SCOPED_TRACE(expr);
    EXPECT_THROW(sql("SELECT nudge.cron_parse($1)", std::string(expr)), pqxx::sql_error);
  }
}

TEST_F(ScheduleText, ThePreviewShowsAnOccurrenceExactlyAtRunAtAsACreateFiresIt) {
  const std::string run_at = "2026-03-26 09:00+01";
  EXPECT_EQ(preview("0 9 * * *", "2026-03-25 10:15Z", 2, run_at, "Europe/Berlin"),
            (std::vector<std::string>{"2026-03-26T09:00:00+01:00", "2026-03-27T09:00:00+01:00"}));
  EXPECT_TRUE(value<bool>(
      "SELECT (c.reminder).next_run_at = $1::timestamptz FROM nudge.create_reminder("
      "p_entity_type => 'u', p_entity_id => '1', p_event_type => 'e', p_channel => 'log', "
      "p_schedule_type => 'cron', p_cron => '0 9 * * *', p_timezone => 'Europe/Berlin', "
      "p_run_at => $1::timestamptz) c",
      run_at));
}

struct Sentence {
  const char* call;  // the arguments of nudge.describe_schedule
  const char* text;
};

const Sentence kSentences[] = {
    {"'one_time', '2026-12-24 17:00Z', p_timezone => 'Europe/Berlin'",
     "once on 2026-12-24 at 18:00 (Europe/Berlin)"},
    {"'one_time', '2026-12-24 17:00:05.25Z'", "once on 2026-12-24 at 17:00:05.25 (UTC)"},
    {"'one_time', '2026-10-25 00:30Z', p_timezone => 'Europe/Berlin'",
     "once on 2026-10-25 at 02:30 (Europe/Berlin)"},
    {"'one_time', '2026-10-25 01:30Z', p_timezone => 'Europe/Berlin'",
     "once on 2026-10-25T02:30:00+01:00 (Europe/Berlin)"},
    {"'one_time', '2026-12-24 17:00Z', p_max_fires => 3, p_ends_at => '2027-01-01Z'",
     "once on 2026-12-24 at 17:00 (UTC)"},
    {"'recurring', p_interval_seconds => 1", "every second"},
    {"'recurring', p_interval_seconds => 5400", "every 90 minutes"},
    {"'recurring', p_interval_seconds => 7200", "every 2 hours"},
    {"'recurring', p_interval_seconds => 1209600", "every 2 weeks"},
    {"'recurring', '2026-11-30 23:00Z', 86400, p_timezone => 'Europe/Berlin'",
     "every day, starting 2026-12-01 (Europe/Berlin)"},
    {"'recurring', '2026-12-01 08:00Z', 86400, p_timezone => 'Europe/Berlin'",
     "every 24 hours, starting 2026-12-01 at 09:00 (Europe/Berlin)"},
    {"'recurring', '2026-12-01 08:00Z', 604800",
     "every 168 hours, starting 2026-12-01 at 08:00 (UTC)"},
    {"'recurring', '2026-12-01 08:00Z', 1209600",
     "every 336 hours, starting 2026-12-01 at 08:00 (UTC)"},
    {"'recurring', '2026-12-01 00:00Z', 1209600", "every 2 weeks, starting 2026-12-01 (UTC)"},
    {"'recurring', '2026-12-01 08:00Z', 3600, p_ends_at => '2026-12-31 22:59:59Z', "
     "p_timezone => 'Europe/Berlin'",
     "every hour, starting 2026-12-01 at 09:00, until 2026-12-31 (Europe/Berlin)"},
    {"'cron', p_cron => '0 9 * * 1-5', p_timezone => 'Europe/Berlin', "
     "p_stop_condition_type => 'db_check', p_stop_condition_value => 'feedback_submitted', "
     "p_max_fires => 5",
     "every weekday at 09:00 (Europe/Berlin), until feedback_submitted is true, at most 5 times"},
    {"'cron', p_cron => '*/15 9-17 * * *'",
     "every day, every 15 minutes between 09:00 and 17:59 (UTC)"},
    {"'cron', p_cron => '30 10 * * 1,4'", "every monday and thursday at 10:30 (UTC)"},
    {"'cron', p_cron => '0 9,17 * * 0,6'", "every saturday and sunday at 09:00 and 17:00 (UTC)"},
    {"'cron', p_cron => '0 9 1,15,L * *'",
     "every month on the 1st, 15th and the last day at 09:00 (UTC)"},
    {"'cron', p_cron => '0 18 24 12 *'", "every year on the 24th of december at 18:00 (UTC)"},
    {"'cron', p_cron => '0 9 * 1,7 1'", "every monday in january and july at 09:00 (UTC)"},
    {"'cron', p_cron => '@daily'", "every day at 00:00 (UTC)"},
    {"'cron', p_cron => '* * * * *'", "every day, every minute (UTC)"},
    {"'cron', p_cron => '15 * * * *'", "every day, every hour at minute 15 (UTC)"},
    {"'cron', p_cron => '5,35 */2 * * *'", "every day, every 2 hours at minutes 5 and 35 (UTC)"},
    {"'cron', p_cron => '0 0-23 * * *'",
     "every day, every hour at minute 0 between 00:00 and 23:59 (UTC)"},
    {"'cron', p_cron => '0 9 1 * 1'", R"(cron "0 9 1 * 1" (UTC))"},
    {"'cron', p_cron => '0 9 * * 0-6'", "every day at 09:00 (UTC)"},
    {"'cron', p_cron => '0 9 * * sun-sat'", "every day at 09:00 (UTC)"},
    {"'cron', p_cron => '0 9 1 * 0-6'", "every day at 09:00 (UTC)"},  // either day: every day
    {"'cron', p_cron => '0 9 * 3 1-7'", "every day in march at 09:00 (UTC)"},
    {"'cron', p_cron => '0 9 */2 * 0-6'", R"(cron "0 9 */2 * 0-6" (UTC))"},  // both: odd days
    {"'cron', p_cron => '*/5 */5 * * *'", R"(cron "*/5 */5 * * *" (UTC))"},
    {"'cron', p_cron => '0 9 30,31 1,3 *'",
     "every year on the 30th and 31st of january and march at 09:00 (UTC)"},
    {"'cron', p_cron => '0 9 31 6,10,12 *'", R"(cron "0 9 31 6,10,12 *" (UTC))"},
    {"'cron', p_cron => '1 8 28-31 6 *'", R"(cron "1 8 28-31 6 *" (UTC))"},
    {"'cron', p_cron => '0 9 29,L 2 *'",
     "every year on the 29th and the last day of february at 09:00 (UTC)"},
    {"'cron', '2026-12-01 00:00Z', p_cron => '0 9 * * *', p_ends_at => '2026-12-31 23:59:59Z', "
     "p_stop_condition_type => 'db_check', p_stop_condition_value => 'tomorrow', p_max_fires => 1",
     R"(every day at 09:00 (UTC), starting 2026-12-01, until "tomorrow" is true, until 2026-12-31, at most once)"},
    {"'recurring', p_interval_seconds => 60, p_stop_condition_type => 'db_check', "
     R"(p_stop_condition_value => 'say "hi" \ now')",
     R"(every minute, until "say \"hi\" \\ now" is true)"},
};

TEST_F(ScheduleText, EveryKindOfScheduleHasItsCanonicalSentence) {
  for (const auto& s : kSentences) {
    SCOPED_TRACE(s.call);
    EXPECT_EQ(value<std::string>(std::string("SELECT nudge.describe_schedule(") + s.call + ")"),
              s.text);
  }
}

TEST_F(ScheduleText, DescribeRefusesWhatACreateWouldNamingTheField) {
  struct Case {
    const char* call;
    const char* field;
  };
  for (const auto& c : std::vector<Case>{
           {"'one_time'", "run_at"},
           {"'recurring', p_interval_seconds => 0", "interval_seconds"},
           {"'cron'", "cron"},
           {"'cron', p_cron => '0 25 * * *'", "cron"},
           {"'cron', p_cron => '0 9 * * *', p_timezone => 'Mars/Base'", "timezone"},
           {"'weekly'", "schedule_type"},
           {"'recurring', p_interval_seconds => 60, p_stop_condition_value => 'x'",
            "stop_condition_type"},
           {"'recurring', p_interval_seconds => 60, p_max_fires => 0", "max_fires"},
       }) {
    SCOPED_TRACE(c.call);
    try {
      sql(std::string("SELECT nudge.describe_schedule(") + c.call + ")");
      ADD_FAILURE() << "accepted";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "22023");
      EXPECT_NE(std::string(e.what()).find("ERROR:  " + std::string(c.field) + ": "),
                std::string::npos)
          << e.what();
    }
  }
}

TEST_F(ScheduleText, AReminderCarriesItsSentenceAndKeepsTheWordsOfItsCronExpression) {
  const std::string cron_reminder =
      "SELECT (c.reminder).id FROM nudge.create_reminder(p_entity_type => 'u', p_entity_id => "
      "'1', p_event_type => 'e', p_channel => 'log', p_schedule_type => 'cron', "
      "p_cron => '0 9 * * 1-5', p_timezone => 'Europe/Berlin', p_max_fires => 3) c";
  const auto id = value<long>(cron_reminder);
  EXPECT_EQ(value<std::string>("SELECT cron_words FROM nudge.reminders WHERE id = $1", id),
            "every weekday at 09:00");
  EXPECT_EQ(value<std::string>("SELECT nudge.reminder_json(r)->>'schedule_text' FROM "
                               "nudge.reminders r WHERE id = $1",
                               id),
            "every weekday at 09:00 (Europe/Berlin), at most 3 times");
  // A write that changes the expression changes its words; one that does not, does not run it.
  sql("UPDATE nudge.reminders SET cron = '0 10 * * *', cron_schedule = nudge.cron_parse('0 10 * "
      "* *') WHERE id = $1",
      id);
  EXPECT_EQ(value<std::string>("SELECT cron_words FROM nudge.reminders WHERE id = $1", id),
            "every day at 10:00");
  sql("UPDATE nudge.reminders SET cron_words = 'kept' WHERE id = $1", id);
  sql("UPDATE nudge.reminders SET max_fires = 4 WHERE id = $1", id);
  EXPECT_EQ(value<std::string>("SELECT cron_words FROM nudge.reminders WHERE id = $1", id), "kept");

  const auto once = value<long>(
      "SELECT (c.reminder).id FROM nudge.create_reminder(p_entity_type => 'u', p_entity_id => "
      "'2', p_event_type => 'e', p_channel => 'log', p_schedule_type => 'one_time', "
      "p_run_at => '2099-01-01 08:30Z', p_stop_condition_type => 'db_check', "
      "p_stop_condition_value => 'done') c");
  EXPECT_TRUE(value<bool>("SELECT cron_words IS NULL FROM nudge.reminders WHERE id = $1", once));
  EXPECT_EQ(value<std::string>("SELECT nudge.reminder_json(r)->>'schedule_text' FROM "
                               "nudge.reminders r WHERE id = $1",
                               once),
            "once on 2099-01-01 at 08:30 (UTC), until done is true");
}

struct MomentCase {
  const char* moment;
  const char* base;  // p_base; p_now is 2026-03-25 10:15Z, the zone Europe/Berlin
  const char* at;    // NULL for none
  const char* why;
};

const MomentCase kMoments[] = {
    {R"({"kind": "instant", "at": "2026-10-25T02:30:00+01:00"})", nullptr, "2026-10-25 01:30:00+00",
     "an instant as given"},
    {R"({"kind": "after", "seconds": 600})", nullptr, "2026-03-25 10:25:00+00", "real seconds"},
    {R"({"kind": "after", "seconds": 86400})", "2026-03-28 10:15Z", "2026-03-29 10:15:00+00",
     "a day of seconds is an hour off the wall clock across the change"},
    {R"({"kind": "days", "days": 1})", "2026-03-28 10:15Z", "2026-03-29 09:15:00+00",
     "a day keeps the wall-clock time across the change"},
    {R"({"kind": "local", "day": 1, "time": "09:00:00"})", nullptr, "2026-03-26 08:00:00+00",
     "tomorrow at 9"},
    {R"({"kind": "local", "day": 4, "time": "02:30:00"})", nullptr, "2026-03-29 01:00:00+00",
     "02:30 does not happen that night: the end of the gap"},
    {R"({"kind": "local", "date": "2026-10-25", "time": "02:30:00"})", nullptr,
     "2026-10-25 00:30:00+00", "a repeated time means its first instant"},
    {R"({"kind": "next", "cron": "0 9 * * *", "seconds": 0})", nullptr, "2026-03-26 08:00:00+00",
     "at 9am: 9 has passed today"},
    {R"({"kind": "next", "cron": "0 9 * * 3", "day": 1, "seconds": 0})", nullptr,
     "2026-04-01 07:00:00+00", "next wednesday, on a Wednesday: a week on"},
    {R"({"kind": "next", "cron": "59 23 * * 5", "seconds": 59})", nullptr, "2026-03-27 22:59:59+00",
     "until friday: its last second"},
    {R"({"kind": "local", "day": 0, "time": "00:00:00", "or_now": true})", nullptr, nullptr,
     "starting today: from now"},
    {R"({"kind": "local", "day": 1, "time": "00:00:00", "or_now": true})", nullptr,
     "2026-03-25 23:00:00+00", "starting tomorrow is ahead"},
    {R"({"kind": "local", "date": "2026-03-25", "time": "00:00:00", "or_now": true})", nullptr,
     nullptr, "starting today's date: from now"},
    {R"({"kind": "local", "date": "2026-03-24", "time": "00:00:00", "or_now": true})", nullptr,
     "2026-03-23 23:00:00+00", "starting yesterday's date: in the past (which the route refuses)"},
    {"null", nullptr, nullptr, "no moment"},
};

TEST_F(ScheduleText, MomentsResolveInTheZoneWithTheCronRulesForDaylightSaving) {
  for (const auto& m : kMoments) {
    SCOPED_TRACE(m.why);
    const auto row =
        sql("SELECT (nudge.resolve_moment($1::jsonb, 'Europe/Berlin', '2026-03-25 10:15Z', "
            "coalesce($2::timestamptz, '2026-03-25 10:15Z')) AT TIME ZONE 'UTC')::text || '+00'",
            std::string(m.moment), m.base ? std::optional<std::string>(m.base) : std::nullopt);
    if (m.at == nullptr) {
      EXPECT_TRUE(row[0][0].is_null()) << row[0][0].c_str();
    } else {
      EXPECT_EQ(row[0][0].c_str(), std::string(m.at));
    }
  }
}

}  // namespace
}  // namespace nudge::test
