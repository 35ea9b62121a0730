// Cron schedules: the next fire after an instant, hand-checked, including the
// daylight-saving gaps and overlaps of Europe/Berlin, America/New_York and Australia/Lord_Howe;
// and the expressions and zones that must be rejected, with the field named.
//
// Calendar facts used below (zdump -v -c 2026,2027): 2026-01-01 is a Thursday. Berlin springs
// forward on 2026-03-29 (02:00 CET -> 03:00 CEST, at 01:00Z) and falls back on 2026-10-25
// (03:00 CEST -> 02:00 CET, at 01:00Z). New York springs forward on 2026-03-08 (02:00 EST ->
// 03:00 EDT, at 07:00Z) and falls back on 2026-11-01 (02:00 EDT -> 01:00 EST, at 06:00Z).
// Lord Howe Island shifts by 30 minutes: it falls back on 2026-04-05 (02:00 +11 -> 01:30 +10:30,
// at 2026-04-04 15:00Z) and springs forward on 2026-10-04 (02:00 +10:30 -> 02:30 +11, at
// 2026-10-03 15:30Z).

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
    {"*/5 * * * *\n", "UTC", "2026-01-01 00:07", "2026-01-01 00:10", "a pasted line's newline"},
    {"\t*/5\t* * * *\t", "UTC", "2026-01-01 00:07", "2026-01-01 00:10", "tabs"},
    {"*/5 * * * *\v\f", "UTC", "2026-01-01 00:07", "2026-01-01 00:10",
     "a vertical tab, a form feed"},
    {"\u00a0*/5 * * * *\u0085", "UTC", "2026-01-01 00:07", "2026-01-01 00:10",
     "a no-break space and a NEL, copied from a web page"},
    {"0 */6 * * *", "UTC", "2026-01-01 07:00", "2026-01-01 12:00", "hour step"},
    {"5,10,50 * * * *", "UTC", "2026-01-01 00:10", "2026-01-01 00:50", "list"},
    {"10-12 * * * *", "UTC", "2026-01-01 00:12", "2026-01-01 01:10", "range"},
    {"10-30/10 * * * *", "UTC", "2026-01-01 00:21", "2026-01-01 00:30", "step over a range"},
    {"10-30/10 * * * *", "UTC", "2026-01-01 00:30", "2026-01-01 01:10", "step range ends"},
    {"40/10 * * * *", "UTC", "2026-01-01 00:55", "2026-01-01 01:40", "n/step runs to the max"},
    {"0/1 * * * *", "UTC", "2026-01-01 00:55", "2026-01-01 00:56", "n/1 runs to the max too"},
    {"47 11/1 * * *", "UTC", "2026-01-01 11:47", "2026-01-01 12:47", "an hour's n/1 too"},
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
    // The repeated hour with the hour field a '*': the whole first pass fires, then the whole
    // second pass (issue 11). Each expected time is the next one in real time, checked with
    // TZ=<zone> date. Berlin: the first pass is 00:xxZ (02:xx CEST), the second 01:xxZ (CET).
    {"*/30 * * * *", "Europe/Berlin", "2026-10-24 23:45", "2026-10-25 00:00", "02:00 CEST"},
    {"*/30 * * * *", "Europe/Berlin", "2026-10-25 00:00", "2026-10-25 00:30", "02:30 CEST"},
    {"*/30 * * * *", "Europe/Berlin", "2026-10-25 00:30", "2026-10-25 01:00", "then 02:00 CET"},
    {"*/30 * * * *", "Europe/Berlin", "2026-10-25 01:10", "2026-10-25 01:30", "02:30 CET"},
    {"*/5 * * * *", "Europe/Berlin", "2026-10-24 23:58", "2026-10-25 00:00", "*/5 before"},
    {"*/5 * * * *", "Europe/Berlin", "2026-10-25 00:07", "2026-10-25 00:10", "*/5 first pass"},
    {"*/5 * * * *", "Europe/Berlin", "2026-10-25 00:55", "2026-10-25 01:00", "*/5 second pass"},
    {"*/5 * * * *", "Europe/Berlin", "2026-10-25 01:57", "2026-10-25 02:00", "*/5 03:00 CET"},
    {"15,45 * * * *", "Europe/Berlin", "2026-10-24 23:50", "2026-10-25 00:15", "list before"},
    {"15,45 * * * *", "Europe/Berlin", "2026-10-25 00:20", "2026-10-25 00:45", "list first pass"},
    {"15,45 * * * *", "Europe/Berlin", "2026-10-25 00:45", "2026-10-25 01:15", "list then second"},
    {"15,45 * * * *", "Europe/Berlin", "2026-10-25 01:15:30", "2026-10-25 01:45", "list second"},
    {"10-20 * * * *", "Europe/Berlin", "2026-10-24 23:30", "2026-10-25 00:10", "range before"},
    {"10-20 * * * *", "Europe/Berlin", "2026-10-25 00:12", "2026-10-25 00:13", "range first pass"},
    {"10-20 * * * *", "Europe/Berlin", "2026-10-25 00:20", "2026-10-25 01:10", "range then second"},
    {"10-20 * * * *", "Europe/Berlin", "2026-10-25 01:14:59", "2026-10-25 01:15", "range second"},
    {"10-20 * * * *", "Europe/Berlin", "2026-10-25 01:20", "2026-10-25 02:10", "range 03:10 CET"},
    {"*/15 2 * * *", "Europe/Berlin", "2026-10-25 00:20", "2026-10-25 00:30", "fixed hour: first"},
    {"*/15 2 * * *", "Europe/Berlin", "2026-10-25 00:45", "2026-10-26 01:00", "fixed: no second"},
    // New York: the first pass is 05:xxZ (01:xx EDT), the second 06:xxZ (01:xx EST).
    {"*/30 * * * *", "America/New_York", "2026-11-01 04:45", "2026-11-01 05:00", "NY 01:00 EDT"},
    {"*/30 * * * *", "America/New_York", "2026-11-01 05:00", "2026-11-01 05:30", "NY 01:30 EDT"},
    {"*/30 * * * *", "America/New_York", "2026-11-01 05:30", "2026-11-01 06:00", "NY 01:00 EST"},
    {"*/30 * * * *", "America/New_York", "2026-11-01 06:30", "2026-11-01 07:00", "NY 02:00 EST"},
    {"*/5 * * * *", "America/New_York", "2026-11-01 04:58", "2026-11-01 05:00", "NY */5 before"},
    {"*/5 * * * *", "America/New_York", "2026-11-01 05:41", "2026-11-01 05:45", "NY */5 first"},
    {"*/5 * * * *", "America/New_York", "2026-11-01 05:55", "2026-11-01 06:00", "NY */5 then 2nd"},
    {"*/5 * * * *", "America/New_York", "2026-11-01 06:22", "2026-11-01 06:25", "NY */5 second"},
    {"15,45 * * * *", "America/New_York", "2026-11-01 04:50", "2026-11-01 05:15", "NY list before"},
    {"15,45 * * * *", "America/New_York", "2026-11-01 05:15", "2026-11-01 05:45", "NY list first"},
    {"15,45 * * * *", "America/New_York", "2026-11-01 05:45", "2026-11-01 06:15", "NY list second"},
    {"15,45 * * * *", "America/New_York", "2026-11-01 06:45", "2026-11-01 07:15", "NY 02:15 EST"},
    {"0-9/3 * * * *", "America/New_York", "2026-11-01 04:55", "2026-11-01 05:00",
     "NY range before"},
    {"0-9/3 * * * *", "America/New_York", "2026-11-01 05:05", "2026-11-01 05:06", "NY range first"},
    {"0-9/3 * * * *", "America/New_York", "2026-11-01 05:09", "2026-11-01 06:00", "NY range then"},
    {"0-9/3 * * * *", "America/New_York", "2026-11-01 06:03", "2026-11-01 06:06",
     "NY range second"},
    {"14-44/23 * */11 * *", "America/New_York", "2026-11-01 05:32", "2026-11-01 05:37", "issue 11"},
    // Lord Howe: the first pass is 14:30-14:59Z (01:30-01:59 +11), the second 15:00-15:29Z.
    {"*/30 * * * *", "Australia/Lord_Howe", "2026-04-04 14:00", "2026-04-04 14:30", "LH first"},
    {"*/30 * * * *", "Australia/Lord_Howe", "2026-04-04 14:30", "2026-04-04 15:00", "LH second"},
    {"*/30 * * * *", "Australia/Lord_Howe", "2026-04-04 15:00", "2026-04-04 15:30", "LH 02:00"},
    {"*/5 * * * *", "Australia/Lord_Howe", "2026-04-04 14:20", "2026-04-04 14:25", "LH */5 before"},
    {"*/5 * * * *", "Australia/Lord_Howe", "2026-04-04 14:31", "2026-04-04 14:35", "LH */5 first"},
    {"*/5 * * * *", "Australia/Lord_Howe", "2026-04-04 14:55", "2026-04-04 15:00", "LH */5 then"},
    {"*/5 * * * *", "Australia/Lord_Howe", "2026-04-04 15:25", "2026-04-04 15:30", "LH */5 02:00"},
    {"15,45 * * * *", "Australia/Lord_Howe", "2026-04-04 14:15", "2026-04-04 14:45", "LH list 1st"},
    {"15,45 * * * *", "Australia/Lord_Howe", "2026-04-04 14:45", "2026-04-04 15:15", "LH list 2nd"},
    {"15,45 * * * *", "Australia/Lord_Howe", "2026-04-04 15:15", "2026-04-04 15:45", "LH 02:15"},
    {"35-50/5 * * * *", "Australia/Lord_Howe", "2026-04-04 14:36", "2026-04-04 14:40", "LH range"},
    {"35-50/5 * * * *", "Australia/Lord_Howe", "2026-04-04 14:50", "2026-04-04 15:05", "LH then"},
    {"35-50/5 * * * *", "Australia/Lord_Howe", "2026-04-04 15:20", "2026-04-04 16:05", "LH 02:35"},
    {"*/10 1 * * *", "Australia/Lord_Howe", "2026-04-04 14:35", "2026-04-04 14:40", "LH fixed"},
    {"*/10 1 * * *", "Australia/Lord_Howe", "2026-04-04 14:50", "2026-04-05 14:30", "LH once"},
    // Lord Howe's half-hour gap: 02:00-02:29 collapses into 02:30 +11.
    {"*/10 * * * *", "Australia/Lord_Howe", "2026-10-03 15:25", "2026-10-03 15:30", "LH gap"},
    {"*/10 * * * *", "Australia/Lord_Howe", "2026-10-03 15:30", "2026-10-03 15:40", "LH after gap"},
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
    {"* -1 * * *", "UTC", "cron: hour: bad range \"-1\""},
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
    {"* * * * 1-", "UTC", "cron: day-of-week: bad range \"1-\""},
    {"@reboot", "UTC", "cron: unknown macro"},
    {"@every 5m", "UTC", "cron: unknown macro"},
    {"0 0 * * *", "Mars/Base", "timezone:"},
    {"0 0 * * *", "Europe/Berlinn", "timezone:"},
    {"0 0 * * *", "", "timezone:"},
};

class Cron : public DatabaseTest {};

TEST_F(Cron, NextFireMatchesTheHandCheckedTable) {
  ASSERT_GE(std::size(kNext), 120u);
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

// The three schedules of issue 11, as POST /v1/schedules/preview shows them.
TEST_F(Cron, PreviewFiresTheWholeFirstPassOfARepeatedHourThenTheSecond) {
  const auto preview = [this](const char* cron, const char* tz, const char* from) {
    std::vector<std::string> times;
    for (const auto& row : sql("SELECT t FROM nudge.preview_schedule('cron', $1::timestamptz, 5,"
                               " p_cron => $2, p_timezone => $3) t",
                               from, cron, tz)) {
      times.push_back(row[0].as<std::string>());
    }
    return times;
  };
  EXPECT_EQ(preview("*/30 * * * *", "Europe/Berlin", "2026-10-24T23:45:00Z"),
            (std::vector<std::string>{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                                      "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
                                      "2026-10-25T03:00:00+01:00"}));
  EXPECT_EQ(preview("*/30 * * * *", "America/New_York", "2026-11-01T04:45:00Z"),
            (std::vector<std::string>{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00",
                                      "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00",
                                      "2026-11-01T02:00:00-05:00"}));
  EXPECT_EQ(preview("14-44/23 * */11 * *", "America/New_York", "2026-11-01T05:32:00Z"),
            (std::vector<std::string>{"2026-11-01T01:37:00-04:00", "2026-11-01T01:14:00-05:00",
                                      "2026-11-01T01:37:00-05:00", "2026-11-01T02:14:00-05:00",
                                      "2026-11-01T02:37:00-05:00"}));
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
