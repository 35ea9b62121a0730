// Cron reminders: created at their first occurrence, moved to the next one by
// the same function that moves recurring reminders, and rejected with the field named.

#include "support/test_database.hpp"

namespace nudge::test {
namespace {

class CronReminder : public DatabaseTest {
 protected:
  // Creates a cron reminder and returns its first fire as "YYYY-MM-DD HH:MM" UTC.
  std::string create(const std::string& cron, const std::string& tz, const std::string& run_at) {
    return value<std::string>(
        "SELECT to_char((c.reminder).next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
        "FROM nudge.create_reminder(p_entity_type => 'u', p_entity_id => $1, "
        "p_event_type => 'e', p_channel => 'log', p_schedule_type => 'cron', "
        "p_run_at => $2::timestamptz, p_cron => $1, p_timezone => $3) c",
        cron, run_at, tz);
  }

  // The column a create rejected, or "" if it was accepted.
  std::string rejected_field(const std::string& args) {
    try {
      sql("SELECT nudge.create_reminder(p_entity_type => 'u', p_entity_id => 'x', "
          "p_event_type => 'e', p_channel => 'log', " +
          args + ")");
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "22023") << e.what();
      std::string m = e.what();
      m = m.substr(m.find("ERROR:  ") == 0 ? 8 : 0);
      return m.substr(0, m.find(':'));
    }
    return "";
  }
};

TEST_F(CronReminder, FirstFireIsTheFirstOccurrenceAtOrAfterRunAt) {
  EXPECT_EQ(create("30 2 * * *", "Europe/Berlin", "2026-03-28 12:00Z"), "2026-03-29 01:00");
  EXPECT_EQ(create("0 9 * * 1-5", "America/New_York", "2026-01-05 14:00Z"), "2026-01-05 14:00");
  EXPECT_EQ(value<std::string>("SELECT timezone FROM nudge.reminders WHERE cron = '0 9 * * 1-5'"),
            "America/New_York");
}

// A pasted line's newline is no part of the schedule: kept without it, on a create and a
// reschedule (explore31d F9: answered "0 9 * * 1-5\n").
TEST_F(CronReminder, IsKeptWithoutTheWhiteSpaceAroundIt) {
  sql("SELECT nudge.create_reminder(p_entity_type => 'u', p_entity_id => 'x', p_event_type => 'e', "
      "p_channel => 'log', p_schedule_type => 'cron', p_cron => E'\\t0 9 * * 1-5\\n')");
  EXPECT_EQ(value<std::string>("SELECT cron || '|' || cron_words FROM nudge.reminders"),
            "0 9 * * 1-5|every weekday at 09:00");
  sql("SELECT nudge.reschedule_reminder(id, p_cron => E'30 * * * *\\x0b\\x0c') "
      "FROM nudge.reminders");
  EXPECT_EQ(value<std::string>("SELECT cron || '|' || cron_words FROM nudge.reminders"),
            "30 * * * *|every day, every hour at minute 30");
}

TEST_F(CronReminder, AFireMovesItToTheNextOccurrenceAfterNow) {
  create("30 2 * * *", "Europe/Berlin", "2026-03-28 12:00Z");
  // As the finish of a fire computes it, with "now" just after the gap's fire.
  EXPECT_EQ(value<std::string>("SELECT to_char(nudge.occurrence_after(r, '2026-03-29 01:00:00.2Z') "
                               "AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM nudge.reminders r"),
            "2026-03-30 00:30");
  // Downtime: everything missed gives one fire, then the calendar resumes.
  EXPECT_EQ(value<std::string>("SELECT to_char(nudge.occurrence_after(r, '2026-04-10 12:00Z') "
                               "AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM nudge.reminders r"),
            "2026-04-11 00:30");
}

TEST_F(CronReminder, OnTimeFiresRunThroughTheWholeFirstPassOfTheRepeatedHourThenTheSecond) {
  EXPECT_EQ(create("*/30 * * * *", "Europe/Berlin", "2026-10-24 23:45Z"), "2026-10-25 00:00");
  std::vector<std::string> fires{value<std::string>(
      "SELECT nudge.rfc3339_in_zone(next_run_at, timezone) FROM nudge.reminders")};
  for (int i = 0; i < 4; ++i) {
    // What the finish of a fire delivered 0.2 s after its occurrence makes of the reminder.
    fires.push_back(value<std::string>(
        "UPDATE nudge.reminders r SET next_run_at = ("
        "    SELECT d.next_run_at FROM nudge.after_attempt("
        "      r, 'delivered', ROW(30, 3, 1000, 300000, 60, 100, 5, 60, 3600)::nudge.worker_policy,"
        "      r.next_run_at + interval '0.2 seconds') d)"
        " RETURNING nudge.rfc3339_in_zone(next_run_at, timezone)"));
  }
  EXPECT_EQ(fires,
            (std::vector<std::string>{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                                      "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
                                      "2026-10-25T03:00:00+01:00"}));
}

// RFC 3339 writes four-digit years: no reminder fires after 9999-12-31T23:59:59Z. A first fire
// later is refused; a schedule whose next occurrence falls later has run its course and
// completes (ends_at), as one past its ends_at does; any other fire moves on as before.
TEST_F(CronReminder, NoFireComesAfterTheYear9999AndASchedulePastItCompletes) {
  EXPECT_EQ(rejected_field("p_schedule_type => 'cron', p_cron => '0 0 1 1 *', "
                           "p_run_at => '9999-06-01T00:00:00Z'"),
            "run_at");
  EXPECT_EQ(rejected_field("p_schedule_type => 'one_time', p_run_at => '9999-12-31T23:59:59-01'"),
            "run_at");
  EXPECT_EQ(create("0 0 1 1 *", "UTC", "9999-01-01T00:00:00Z"), "9999-01-01 00:00");
  EXPECT_EQ(create("0 0 * * *", "UTC", "9999-12-31T00:00:00Z"), "9999-12-31 00:00");
  sql("SELECT nudge.create_reminder(p_entity_type => 'u', p_entity_id => 'every', "
      "p_event_type => 'e', p_channel => 'log', p_schedule_type => 'recurring', "
      "p_interval_seconds => 86400, p_run_at => '9999-12-31T12:00:00Z')");
  sql("SELECT nudge.create_reminder(p_entity_type => 'u', p_entity_id => 'early', "
      "p_event_type => 'e', p_channel => 'log', p_schedule_type => 'recurring', "
      "p_interval_seconds => 86400, p_run_at => '9991-12-31T12:00:00Z')");
  // What the finish of each fire, delivered 0.2 s after its occurrence, makes of it.
  const pqxx::result after =
      sql("SELECT r.entity_id, d.status, coalesce(d.completed_reason, 'NULL'), "
          "       to_char(d.next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
          "  FROM nudge.reminders r, nudge.after_attempt("
          "    r, 'delivered', ROW(30, 3, 1000, 300000, 60, 100, 5, 60, 3600)::nudge.worker_policy,"
          "    r.next_run_at + interval '0.2 seconds') d ORDER BY r.id");
  ASSERT_EQ(after.size(), 4u);
  const auto row = [&](int i) {
    return std::string(after[i][1].c_str()) + " " + after[i][2].c_str() + " " + after[i][3].c_str();
  };
  EXPECT_EQ(row(0), "COMPLETED ends_at 10000-01-01 00:00") << "next 1 January is past 9999";
  EXPECT_EQ(row(1), "COMPLETED ends_at 10000-01-01 00:00") << "so is the next midnight";
  EXPECT_EQ(row(2), "COMPLETED ends_at 10000-01-01 12:00") << "and the next noon";
  EXPECT_EQ(row(3), "ACTIVE NULL 9992-01-01 12:00") << "a fire years before goes on";
  // A reschedule past it is refused too; a preview stops there (none after it, no error).
  try {
    sql("SELECT nudge.reschedule_reminder((SELECT id FROM nudge.reminders WHERE entity_id = "
        "'early'), p_run_at => '9999-12-31T23:30:00-01:00')");
    ADD_FAILURE() << "a run_at after 9999 was taken";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "22023");
    EXPECT_NE(std::string(e.what()).find("run_at: must not be after 9999-12-31T23:59:59Z"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(value<std::string>("SELECT string_agg(t, ' ') FROM nudge.preview_schedule("
                               "'cron', '9999-12-30T00:00:00Z', 5, p_cron => '0 0 * * *') t"),
            "9999-12-31T00:00:00+00:00");
}

TEST_F(CronReminder, BadCronRemindersAreRejectedNamingTheField) {
  EXPECT_EQ(rejected_field("p_schedule_type => 'cron'"), "cron");
  EXPECT_EQ(rejected_field("p_schedule_type => 'cron', p_cron => '0 0 32 * *'"), "cron");
  EXPECT_EQ(rejected_field("p_schedule_type => 'cron', p_cron => '@reboot'"), "cron");
  EXPECT_EQ(rejected_field("p_schedule_type => 'cron', p_cron => '* * * * *', p_timezone => 'X/Y'"),
            "timezone");
  EXPECT_EQ(rejected_field("p_schedule_type => 'cron', p_cron => '* * * * *', "
                           "p_interval_seconds => 60"),
            "interval_seconds");
  EXPECT_EQ(rejected_field("p_schedule_type => 'recurring', p_interval_seconds => 60, "
                           "p_cron => '* * * * *'"),
            "cron");
  EXPECT_EQ(rejected_field("p_schedule_type => 'one_time', p_run_at => now(), p_timezone => 'UTC'"),
            "timezone");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
}

// PostgreSQL reads "+05:00" and "UTC+5" as POSIX TZ strings, west of Greenwich: 09:00 there
// would be 14:00 UTC; AT TIME ZONE also reads abbreviations (one offset all year) and the
// server's own zone. Only tz database names are taken, including those with digits, but for the
// seven AT TIME ZONE reads as abbreviations (CET would be UTC+01:00 all summer).
TEST_F(CronReminder, AnOffsetIsRefusedAsATimeZoneAndTzDatabaseNamesAreTaken) {
  for (const char* refused :
       {"+05:00", "UTC+5", "-3", "<+05>-5", "EST5EDT,M3.2.0,M11.1.0", "CEST", "pdt", "CET", "met",
        "EET", "WET", "EST", "MST", "HST", "localtime", "posixrules", "Factory", "Mars/Base"})
    EXPECT_EQ(rejected_field("p_schedule_type => 'cron', p_cron => '0 9 * * *', "
                             "p_timezone => '" +
                             std::string(refused) + "'"),
              "timezone")
        << refused;
  EXPECT_EQ(create("0 9 * * *", "Etc/GMT-5", "2026-03-02T00:00:00Z"), "2026-03-02 04:00");
  EXPECT_EQ(create("0 9 * * 1", "EST5EDT", "2026-03-02T00:00:00Z"), "2026-03-02 14:00");
  EXPECT_EQ(create("0 9 * * 2", "America/Port-au-Prince", "2026-03-02T00:00:00Z"),
            "2026-03-03 14:00");
  sql("SELECT set_config('timezone', 'America/Lima', false)");
  EXPECT_EQ(value<std::string>("SELECT nudge.checked_timezone('Asia/Tokyo')"), "Asia/Tokyo");
  EXPECT_EQ(value<std::string>("SHOW timezone"), "America/Lima")
      << "the check's own SET TIME ZONE ends with it";
  try {
    sql("SELECT nudge.checked_timezone('+05:00')");
    ADD_FAILURE() << "+05:00 was taken";
  } catch (const pqxx::sql_error& e) {
    EXPECT_NE(std::string(e.what()).find("Etc/GMT-5 for a fixed UTC+05:00"), std::string::npos)
        << e.what();
  }
  try {
    sql("SELECT nudge.checked_timezone('cet')");
    ADD_FAILURE() << "cet was taken";
  } catch (const pqxx::sql_error& e) {
    EXPECT_NE(
        std::string(e.what()).find(
            "timezone: \"cet\" is read as an abbreviation, UTC+01:00 all year: name the zone, "
            "such as Europe/Paris, or Etc/GMT-1 for that offset all year"),
        std::string::npos)
        << e.what();
  }
}

// A name with a "/" that the tz database lacks is still read by PostgreSQL as a POSIX TZ string
// ("Etc/GMT+99": 99 hours west, written -99:00, which RFC 3339 cannot carry): refused as an
// offset wherever a zone is taken, while every name of the tz database with a digit is taken
// as it is spelled.
TEST_F(CronReminder, EtcNamesTheTzDatabaseLacksAreOffsetsAndRefusedEverywhere) {
  for (const char* refused : {"Etc/GMT+13", "Etc/GMT+14", "Etc/GMT-15", "Etc/GMT-16", "Etc/GMT+99",
                              "etc/gmt+20", "Foo/Bar+3", "America/New_York+3"}) {
    SCOPED_TRACE(refused);
    EXPECT_EQ(rejected_field("p_schedule_type => 'cron', p_cron => '0 9 * * *', "
                             "p_timezone => '" +
                             std::string(refused) + "'"),
              "timezone");
    for (const char* call :
         {"SELECT nudge.checked_timezone($1)",
          "SELECT nudge.preview_schedule('cron', '2026-12-05Z', 1, p_cron => '0 9 * * *', "
          "p_timezone => $1)",
          "SELECT nudge.describe_schedule('cron', p_cron => '0 9 * * *', p_timezone => $1)"}) {
      try {
        sql(call, std::string(refused));
        ADD_FAILURE() << call << " took it";
      } catch (const pqxx::sql_error& e) {
        EXPECT_EQ(e.sqlstate(), "22023") << e.what();
        EXPECT_NE(std::string(e.what()).find("is an offset, not a time zone name"),
                  std::string::npos)
            << e.what();
      }
    }
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
  EXPECT_GT(value<long>("SELECT count(*) FROM pg_timezone_names WHERE name ~ '[0-9]'"), 60);
  EXPECT_EQ(value<std::string>("SELECT coalesce(string_agg(name, ' '), '') FROM pg_timezone_names "
                               "WHERE name ~ '[0-9]' AND nudge.checked_timezone(name) <> name"),
            "");
  EXPECT_EQ(create("0 9 * * *", "Etc/GMT+12", "2026-03-02T00:00:00Z"), "2026-03-02 21:00");
  EXPECT_EQ(create("0 9 * * 1", "Etc/GMT-14", "2026-03-02T00:00:00Z"), "2026-03-08 19:00");
}

// A day-of-month and a day-of-week that must both match can be decades apart: 29 February on a
// Sunday (*/7) comes in 2004, 2032, 2060, 2088, then 2128 (2100 is no leap year). nudge.cron_next
// walks 8 years, then searches on through the 400-year cycle: it finds every such occurrence, as
// a walk over every day does, in a zone with daylight saving too.
TEST_F(CronReminder, AnOccurrenceDecadesAwayIsFoundAsAWalkOverEveryDayFindsIt) {
  for (int step = 2; step <= 7; ++step) {
    SCOPED_TRACE(step);
    const std::string cron = "30 2 29 2 */" + std::to_string(step);  // 0, step, ... (7: Sunday)
    EXPECT_EQ(
        value<std::string>(
            "WITH RECURSIVE c AS (SELECT nudge.cron_parse($1) AS e), "
            "f(i, t) AS (SELECT 1, nudge.cron_next(c.e, 'America/New_York', '2001-01-01Z') FROM c "
            "UNION ALL SELECT f.i + 1, nudge.cron_next(c.e, 'America/New_York', f.t) FROM f, c "
            "WHERE f.i < 8) "
            "SELECT string_agg(to_char(t AT TIME ZONE 'America/New_York', 'YYYY-MM-DD HH24:MI'), "
            "' ' ORDER BY i) FROM f",
            cron),
        value<std::string>(
            "SELECT string_agg(to_char(d, 'YYYY-MM-DD') || ' 02:30', ' ' ORDER BY d) "
            "FROM (SELECT d FROM generate_series(date '2001-01-01', "
            "date '2401-01-01', interval '1 day') d "
            "WHERE to_char(d, 'MM-DD') = '02-29' "
            "AND extract(dow FROM d)::integer % $1 = 0 ORDER BY d LIMIT 8) s",
            step));
  }
  // Sundays: 28 years, and 40 across 2100.
  EXPECT_EQ(value<std::string>(
                "SELECT string_agg(to_char(nudge.cron_next(nudge.cron_parse('0 0 29 2 */7'), "
                "'UTC', a), 'YYYY-MM-DD'), ' ' ORDER BY a) FROM unnest(ARRAY["
                "'2004-03-01Z', '2060-03-01Z', '2088-03-01Z']::timestamptz[]) a"),
            "2032-02-29 2088-02-29 2128-02-29");
  // Frequent schedules are unchanged, and never reach the search beyond 8 years.
  EXPECT_EQ(value<std::string>("SELECT nudge.cron_next(nudge.cron_parse('0 9 * * 1-5'), "
                               "'America/New_York', '2026-12-05T10:00Z')::text"),
            "2026-12-07 14:00:00+00");
  EXPECT_EQ(value<std::string>("SELECT nudge.cron_next(nudge.cron_parse('*/5 * * * *'), "
                               "'Europe/Berlin', '2026-03-29T00:58Z')::text"),
            "2026-03-29 01:00:00+00");
}

// Such a cron is created, moved and previewed at its real next occurrence, and after its fire it
// moves on to the next one decades later (it went to infinity after 8 years, never to fire again).
TEST_F(CronReminder, ACronWhoseNextOccurrenceIsDecadesAwayIsCreatedAndFiresThen) {
  EXPECT_EQ(create("0 0 29 2 */4", "UTC", "2033-01-01T00:00:00Z"), "2052-02-29 00:00");
  EXPECT_EQ(create("0 0 29 2 */6", "UTC", "2032-01-01T00:00:00Z"), "2032-02-29 00:00");
  EXPECT_EQ(value<std::string>(
                "SELECT d.status || ' ' || to_char(d.next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') "
                "FROM nudge.reminders r, nudge.after_attempt(r, 'delivered', "
                "ROW(30, 3, 1000, 300000, 60, 100, 5, 60, 3600)::nudge.worker_policy, "
                "r.next_run_at + interval '0.2 seconds') d WHERE r.cron = '0 0 29 2 */6'"),
            "ACTIVE 2048-02-29")
      << "the next 29 February on a Saturday or Sunday";
  EXPECT_EQ(
      value<std::string>("SELECT to_char(r.next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM "
                         "nudge.reschedule_reminder((SELECT id FROM nudge.reminders WHERE cron = "
                         "'0 0 29 2 */6'), p_run_at => '2032-03-01T00:00:00Z') r"),
      "2048-02-29");
  EXPECT_EQ(value<std::string>("SELECT string_agg(t, ' ') FROM nudge.preview_schedule('cron', "
                               "'2033-01-01T00:00:00Z', 3, p_cron => '0 0 29 2 */4') t"),
            "2052-02-29T00:00:00+00:00 2060-02-29T00:00:00+00:00 2080-02-29T00:00:00+00:00");
  // The last such Sunday before the end of 9999 is in 9976; the next, in 10004, is past it, so
  // that fire completes the reminder (ends_at) as any schedule's last one before 10000 does.
  EXPECT_EQ(create("0 0 29 2 */7", "UTC", "9960-01-01T00:00:00Z"), "9976-02-29 00:00");
  EXPECT_EQ(
      value<std::string>("SELECT d.status || ' ' || d.completed_reason FROM nudge.reminders r, "
                         "nudge.after_attempt(r, 'delivered', "
                         "ROW(30, 3, 1000, 300000, 60, 100, 5, 60, 3600)::nudge.worker_policy, "
                         "r.next_run_at + interval '0.2 seconds') d WHERE r.cron = '0 0 29 2 */7'"),
      "COMPLETED ends_at");
}

// Moving a cron reminder keeps it on its schedule, as its first fire was; never past ends_at.
TEST_F(CronReminder, RescheduledToRunAtItFiresAtTheFirstOccurrenceAtOrAfterIt) {
  EXPECT_EQ(create("0 9 * * *", "Asia/Tokyo", "2026-03-02T00:00:00Z"), "2026-03-02 00:00");
  const std::string id = value<std::string>("SELECT id::text FROM nudge.reminders");
  EXPECT_EQ(value<std::string>(
                "SELECT to_char(next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
                "FROM nudge.reschedule_reminder($1::bigint, p_run_at => '2026-03-05T15:41:00Z')",
                id),
            "2026-03-06 00:00");
  EXPECT_EQ(value<std::string>(
                "SELECT to_char(next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
                "FROM nudge.reschedule_reminder($1::bigint, p_run_at => '2026-03-07T00:00:00Z')",
                id),
            "2026-03-07 00:00");
  sql("SELECT nudge.reschedule_reminder($1::bigint, p_ends_at => '2026-03-20T00:00:00Z')", id);
  try {
    sql("SELECT nudge.reschedule_reminder($1::bigint, p_run_at => '2026-03-20T01:00:00Z')", id);
    ADD_FAILURE() << "a run_at after ends_at was taken";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "22023");
    EXPECT_NE(std::string(e.what()).find("run_at: must not be after ends_at"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(
      value<std::string>("SELECT to_char(next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
                         "FROM nudge.reminders"),
      "2026-03-07 00:00");

  // A new schedule (explore18b #8) takes its first occurrence at or after the run_at given with
  // it, and is refused naming cron when that comes after ends_at.
  EXPECT_EQ(
      value<std::string>("SELECT to_char(next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
                         "|| ' ' || cron || ' ' || timezone "
                         "FROM nudge.reschedule_reminder($1::bigint, p_cron => '30 7 * * *', "
                         "p_timezone => 'Europe/Berlin', p_run_at => '2026-03-08T00:00:00Z')",
                         id),
      "2026-03-08 06:30 30 7 * * * Europe/Berlin");
  try {
    sql("SELECT nudge.reschedule_reminder($1::bigint, p_cron => '0 0 1 4 *', "
        "p_run_at => '2026-03-08T00:00:00Z')",
        id);
    ADD_FAILURE() << "a schedule whose next fire is after ends_at was taken";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "22023");
    EXPECT_NE(std::string(e.what()).find("run_at: must not be after ends_at"), std::string::npos)
        << e.what();
  }
  try {
    sql("SELECT nudge.reschedule_reminder($1::bigint, p_cron => '0 0 1 4 *')", id);
    ADD_FAILURE() << "a schedule whose next fire is after ends_at was taken";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "22023");
    EXPECT_NE(std::string(e.what()).find("cron: the new schedule's next fire"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(value<std::string>("SELECT cron FROM nudge.reminders"), "30 7 * * *");
}

}  // namespace
}  // namespace nudge::test
