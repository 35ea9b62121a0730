// Cron schedules: the next fire after an instant, hand-checked, including the
// daylight-saving gap and overlap of Europe/Berlin and America/New_York; and the expressions
// and zones that must be rejected, with the field named.
//
// Calendar facts used below: 2026-01-01 is a Thursday. Berlin springs forward on 2026-03-29
// (02:00 CET -> 03:00 CEST, at 01:00Z) and falls back on 2026-10-25 (03:00 CEST -> 02:00 CET,
// at 01:00Z). New York springs forward on 2026-03-08 (02:00 EST -> 03:00 EDT, at 07:00Z) and
// falls back on 2026-11-01 (02:00 EDT -> 01:00 EST, at 06:00Z).

#include "support/test_database.hpp"

namespace nudge::test {
namespace {

struct NextCase {
  const char* expr;
  const char* tz;
  const char* after;     // UTC
  const char* expected;  // UTC, "YYYY-MM-DD HH:MM"
  const char* why;
};

const NextCase kNext[] = {
    // every field's syntax
    {"* * * * *", "UTC", "2026-01-01 00:00", "2026-01-01 00:01", "strictly after"},
    {"* * * * *", "UTC", "2026-01-01 00:00:30", "2026-01-01 00:01", "seconds are dropped"},
    {"0 * * * *", "UTC", "2026-01-01 00:00", "2026-01-01 01:00", "hourly"},
    {"15 * * * *", "UTC", "2026-01-01 00:20", "2026-01-01 01:15", "minute passed this hour"},
    {"*/5 * * * *", "UTC", "2026-01-01 00:07", "2026-01-01 00:10", "minute step"},
    {"0 */6 * * *", "UTC", "2026-01-01 07:00", "2026-01-01 12:00", "hour step"},
    {"5,10,50 * * * *", "UTC", "2026-01-01 00:10", "2026-01-01 00:50", "list"},
    {"10-12 * * * *", "UTC", "2026-01-01 00:12", "2026-01-01 01:10", "range"},
    {"10-30/10 * * * *", "UTC", "2026-01-01 00:21", "2026-01-01 00:30", "step over a range"},
    {"10-30/10 * * * *", "UTC", "2026-01-01 00:30", "2026-01-01 01:10", "step range ends"},
    {"40/10 * * * *", "UTC", "2026-01-01 00:55", "2026-01-01 01:40", "n/step runs to the max"},
    {"30 9 * * *", "UTC", "2026-01-01 09:30", "2026-01-02 09:30", "daily, same minute"},
    {"59 23 31 12 *", "UTC", "2026-06-01 00:00", "2026-12-31 23:59", "last minute of the year"},
    // months and month ends
    {"0 0 1 * *", "UTC", "2026-01-15 00:00", "2026-02-01 00:00", "first of the month"},
    {"0 0 31 * *", "UTC", "2026-02-01 00:00", "2026-03-31 00:00", "February has no 31st"},
    {"0 0 31 * *", "UTC", "2026-04-01 00:00", "2026-05-31 00:00", "April has no 31st"},
    {"0 0 30 * *", "UTC", "2026-02-01 00:00", "2026-03-30 00:00", "February has no 30th"},
    {"0 0 * JAN *", "UTC", "2026-01-31 12:00", "2027-01-01 00:00", "month name"},
    {"0 0 1 jun *", "UTC", "2026-01-01 00:00", "2026-06-01 00:00", "lower-case month name"},
    {"0 0 1 JAN-MAR/2 *", "UTC", "2026-01-01 00:00", "2026-03-01 00:00", "step over month names"},
    // February 29 and far-future iteration
    {"0 12 29 2 *", "UTC", "2026-03-01 00:00", "2028-02-29 12:00", "next leap year"},
    {"0 0 29 2 *", "UTC", "2028-02-29 00:00", "2032-02-29 00:00", "four years on"},
    {"0 0 29 2 *", "UTC", "2096-03-01 00:00", "2104-02-29 00:00", "2100 is not a leap year"},
    // day of week: numbers, 7 as Sunday, names, ranges
    {"0 0 * * 0", "UTC", "2026-01-01 00:00", "2026-01-04 00:00", "Sunday as 0"},
    {"0 0 * * 7", "UTC", "2026-01-01 00:00", "2026-01-04 00:00", "Sunday as 7"},
    {"0 0 * * SUN", "UTC", "2026-01-01 00:00", "2026-01-04 00:00", "Sunday by name"},
    {"0 0 * * mon", "UTC", "2026-01-01 00:00", "2026-01-05 00:00", "lower-case day name"},
    {"0 0 * * MON-FRI", "UTC", "2026-01-02 12:00", "2026-01-05 00:00", "weekdays skip the weekend"},
    {"0 0 * * 6,0", "UTC", "2026-01-01 00:00", "2026-01-03 00:00", "weekend list"},
    {"0 0 * * 5-7", "UTC", "2026-01-03 12:00", "2026-01-04 00:00", "range ending at 7"},
    // day-of-month and day-of-week: either matches when both are restricted
    {"0 0 13 * 5", "UTC", "2026-01-01 00:00", "2026-01-02 00:00", "a Friday before the 13th"},
    {"0 0 13 * 5", "UTC", "2026-01-10 00:00", "2026-01-13 00:00", "the 13th before a Friday"},
    {"0 0 1,15 * 3", "UTC", "2026-01-01 00:00", "2026-01-07 00:00", "Wednesday before the 15th"},
    {"0 0 */2 * 1", "UTC", "2026-01-01 00:00", "2026-01-05 00:00", "*/2 is unrestricted: both"},
    {"0 0 */2 * 1", "UTC", "2026-01-05 00:00", "2026-01-19 00:00", "odd-day Mondays only"},
    {"0 0 * * 1", "UTC", "2026-01-05 00:00", "2026-01-12 00:00", "weekly on Mondays"},
    // macros
    {"@hourly", "UTC", "2026-01-01 10:30", "2026-01-01 11:00", "@hourly"},
    {"@daily", "UTC", "2026-01-01 10:00", "2026-01-02 00:00", "@daily"},
    {"@midnight", "UTC", "2026-01-01 10:00", "2026-01-02 00:00", "@midnight"},
    {"@weekly", "UTC", "2026-01-01 00:00", "2026-01-04 00:00", "@weekly is Sunday"},
    {"@monthly", "UTC", "2026-01-01 00:00", "2026-02-01 00:00", "@monthly"},
    {"@yearly", "UTC", "2026-01-01 00:00", "2027-01-01 00:00", "@yearly"},
    {"@annually", "UTC", "2026-01-01 00:00", "2027-01-01 00:00", "@annually"},
    // zones without a transition nearby
    {"0 0 * * *", "Europe/Berlin", "2026-01-01 00:00", "2026-01-01 23:00", "Berlin midnight"},
    {"0 9 * * 1-5", "America/New_York", "2026-01-01 00:00", "2026-01-01 14:00", "9:00 EST"},
    {"0 0 1 1 *", "Asia/Kolkata", "2026-06-01 00:00", "2026-12-31 18:30", "half-hour offset"},
    {"0 12 * * *", "Australia/Sydney", "2026-01-01 00:00", "2026-01-01 01:00", "AEDT +11"},
    // Berlin gap: 02:xx does not exist on 2026-03-29; it fires once, at 03:00 CEST (01:00Z)
    {"30 2 * * *", "Europe/Berlin", "2026-03-28 12:00", "2026-03-29 01:00", "gap: end of gap"},
    {"30 2 * * *", "Europe/Berlin", "2026-03-29 01:00", "2026-03-30 00:30", "gap: next day CEST"},
    {"*/15 2 * * *", "Europe/Berlin", "2026-03-28 12:00", "2026-03-29 01:00", "gap: four -> one"},
    {"*/15 2 * * *", "Europe/Berlin", "2026-03-29 01:00", "2026-03-30 00:00", "gap: collapsed"},
    {"0 3 * * *", "Europe/Berlin", "2026-03-28 12:00", "2026-03-29 01:00", "03:00 CEST exists"},
    {"0 * * * *", "Europe/Berlin", "2026-03-29 00:30", "2026-03-29 01:00", "hourly over the gap"},
    {"0 * * * *", "Europe/Berlin", "2026-03-29 01:00", "2026-03-29 02:00", "02:00 and 03:00 once"},
    // Berlin overlap: 02:xx happens twice on 2026-10-25 (00:xxZ CEST, then 01:xxZ CET)
    {"30 2 * * *", "Europe/Berlin", "2026-10-24 12:00", "2026-10-25 00:30", "overlap: first"},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25 00:30", "2026-10-26 01:30", "overlap: only once"},
    {"30 * * * *", "Europe/Berlin", "2026-10-25 00:30", "2026-10-25 01:30", "hour *: twice"},
    {"0 * * * *", "Europe/Berlin", "2026-10-25 00:00", "2026-10-25 01:00", "hourly: real hours"},
    {"0 */1 * * *", "Europe/Berlin", "2026-10-25 00:00", "2026-10-25 01:00", "*/1 is a star"},
    {"0 2 * * *", "Europe/Berlin", "2026-10-25 00:00", "2026-10-26 01:00", "second 02:00 skipped"},
    // New York gap: 02:xx does not exist on 2026-03-08; 03:00 EDT is 07:00Z
    {"30 2 * * *", "America/New_York", "2026-03-07 12:00", "2026-03-08 07:00", "NY gap"},
    {"0 2 * * *", "America/New_York", "2026-03-07 12:00", "2026-03-08 07:00", "NY gap at 02:00"},
    {"30 2 * * *", "America/New_York", "2026-03-08 07:00", "2026-03-09 06:30", "NY after gap"},
    // New York overlap: 01:xx happens twice on 2026-11-01 (05:xxZ EDT, then 06:xxZ EST)
    {"0 1 * * *", "America/New_York", "2026-10-31 12:00", "2026-11-01 05:00", "NY overlap first"},
    {"0 1 * * *", "America/New_York", "2026-11-01 05:00", "2026-11-02 06:00", "NY once"},
    {"30 1 * * *", "America/New_York", "2026-11-01 05:30", "2026-11-02 06:30", "NY 01:30 once"},
    {"30 * * * *", "America/New_York", "2026-11-01 05:30", "2026-11-01 06:30", "NY hour *: twice"},
    {"0 2 * * *", "America/New_York", "2026-10-31 12:00", "2026-11-01 07:00", "02:00 EST once"},
    {"*/30 1 * * *", "America/New_York", "2026-11-01 05:00", "2026-11-01 05:30", "NY 01:30 EDT"},
    {"*/30 1 * * *", "America/New_York", "2026-11-01 05:30", "2026-11-02 06:00", "NY no repeat"},
};

struct BadCase {
  const char* expr;
  const char* tz;
  const char* message_start;  // the field is named first
};

const BadCase kBad[] = {
    {"", "UTC", "cron: needs 5 fields"},
    {"   ", "UTC", "cron: needs 5 fields"},
    {"* * * *", "UTC", "cron: needs 5 fields"},
    {"* * * * * *", "UTC", "cron: needs 5 fields"},
    {"60 * * * *", "UTC", "cron: minute:"},
    {"99999 * * * *", "UTC", "cron: minute:"},
    {"a * * * *", "UTC", "cron: minute:"},
    {"5-2 * * * *", "UTC", "cron: minute:"},
    {"1-2-3 * * * *", "UTC", "cron: minute:"},
    {"1,,2 * * * *", "UTC", "cron: minute:"},
    {"*/0 * * * *", "UTC", "cron: minute:"},
    {"*/x * * * *", "UTC", "cron: minute:"},
    {"1/2/3 * * * *", "UTC", "cron: minute:"},
    {"- * * * *", "UTC", "cron: minute:"},
    {"* 24 * * *", "UTC", "cron: hour:"},
    {"* -1 * * *", "UTC", "cron: hour:"},
    {"* MON * * *", "UTC", "cron: hour:"},
    {"* * 0 * *", "UTC", "cron: day-of-month:"},
    {"* * 32 * *", "UTC", "cron: day-of-month:"},
    {"* * 30 2 *", "UTC", "cron: day-of-month:"},
    {"* * 31 4,6,9,11 *", "UTC", "cron: day-of-month:"},
    {"* * * 0 *", "UTC", "cron: month:"},
    {"* * * 13 *", "UTC", "cron: month:"},
    {"* * * FOO *", "UTC", "cron: month:"},
    {"* * * JAN-FOO *", "UTC", "cron: month:"},
    {"* * * * 8", "UTC", "cron: day-of-week:"},
    {"* * * * FUNDAY", "UTC", "cron: day-of-week:"},
    {"* * * * 1-", "UTC", "cron: day-of-week:"},
    {"@reboot", "UTC", "cron: unknown macro"},
    {"@every 5m", "UTC", "cron: unknown macro"},
    {"0 0 * * *", "Mars/Base", "timezone:"},
    {"0 0 * * *", "Europe/Berlinn", "timezone:"},
    {"0 0 * * *", "", "timezone:"},
};

class Cron : public DatabaseTest {};

TEST_F(Cron, NextFireMatchesTheHandCheckedTable) {
  ASSERT_GE(std::size(kNext), 60u);
  for (const auto& c : kNext) {
    SCOPED_TRACE(std::string(c.expr) + " in " + c.tz + " after " + c.after + " (" + c.why + ")");
    EXPECT_EQ(
        value<std::string>(
            "SELECT to_char(nudge.cron_next(nudge.cron_parse($1), $2, ($3 || 'Z')::timestamptz) "
            "AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')",
            c.expr, c.tz, c.after),
        c.expected);
  }
}

TEST_F(Cron, BadExpressionsAndZonesAreRejectedNamingTheField) {
  ASSERT_GE(std::size(kBad), 30u);
  for (const auto& c : kBad) {
    SCOPED_TRACE(std::string("'") + c.expr + "' in '" + c.tz + "'");
    try {
      sql("SELECT * FROM nudge.preview_schedule('cron', now(), 1, p_cron => $1, p_timezone => $2)",
          c.expr, c.tz);
      ADD_FAILURE() << "accepted";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "22023");
      std::string message = e.what();
      message = message.substr(message.find("ERROR:  ") == 0 ? 8 : 0);
      EXPECT_EQ(message.rfind(c.message_start, 0), 0u) << message;
    }
  }
}

TEST_F(Cron, PreviewListsTheNextFiresInOrder) {
  const auto rows =
      sql("SELECT t FROM nudge.preview_schedule('cron', '2026-03-28 12:00Z', 3,"
          " p_cron => '*/15 2 * * *', p_timezone => 'Europe/Berlin') t");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0].as<std::string>(), "2026-03-29T03:00:00+02:00");  // the gap's four, as one
  EXPECT_EQ(rows[1][0].as<std::string>(), "2026-03-30T02:00:00+02:00");
  EXPECT_EQ(rows[2][0].as<std::string>(), "2026-03-30T02:15:00+02:00");
  EXPECT_THROW(sql("SELECT nudge.preview_schedule('cron', now(), 101, p_cron => '* * * * *')"),
               pqxx::sql_error);
}

}  // namespace
}  // namespace nudge::test
