// Misfire policies after an outage of several periods (the workers were down; the reminder's
// next run is far in the past): fire_once fires once and resumes the schedule, skip fires
// nothing and resumes, fire_all fires each missed occurrence in order, the newest ones up to the
// cap. The same holds for cron schedules and for a reminder resumed after a long pause.

#include <set>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

// Lease 30 s, 3 attempts, fast retries, misfire threshold 60 s, fire_all cap `cap`.
Policy policy(int cap = 100) {
  return {30, 3, 100, 250, 60, cap};
}

class MisfireTest : public LifecycleTest {
 protected:
  // Runs a worker until nothing is due, delivering everything; the occurrences it fired, in order.
  // (A claim that skips a reminder leaves it due when an occurrence within the threshold is
  // left: the next claim takes it, as a worker's next turn does.)
  std::vector<std::string> drain(const Policy& worker_policy, int max_rounds = 1000) {
    std::vector<std::string> fired;
    std::vector<Claimed> done;
    for (int i = 0; i < max_rounds; ++i) {
      done = round("w1", finish_arrays(done, "delivered", std::nullopt), 10, worker_policy);
      if (done.empty() && !value<bool>("SELECT EXISTS (SELECT 1 FROM nudge.reminders WHERE "
                                       "status = 'ACTIVE' AND next_run_at <= now())"))
        return fired;
      for (const auto& c : done) fired.push_back(c.scheduled_for);
    }
    ADD_FAILURE() << "still firing after " << max_rounds << " rounds";
    return fired;
  }
  // A recurring reminder every `interval` s whose workers were down for `missed` periods (and
  // a little more), with the given policy.
  std::int64_t after_outage(const std::string& policy_name, int interval, int missed) {
    const std::string run_at =
        "now() - interval '" + std::to_string(interval * missed + 5) + " seconds'";
    return create_recurring("u-" + policy_name, interval, run_at,
                            ", p_misfire_policy => '" + policy_name + "'");
  }
};

TEST_F(MisfireTest, FireOnceFiresOneCatchUpThenResumesTheSchedule) {
  const std::int64_t id = after_outage("fire_once", 60, 5);
  const auto fired = drain(policy());
  EXPECT_EQ(fired.size(), 1u);
  EXPECT_EQ(executions_of(id), 1);
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);
  EXPECT_TRUE(value<bool>("SELECT next_run_at > now() FROM nudge.reminders WHERE id = $1", id));
}

// Occurrences at -305, -245, -185, -125 and -65 s are missed (more than the 60 s threshold
// late); the one at -5 s is only late, and fires (it was skipped with them, unrecorded).
TEST_F(MisfireTest, SkipFiresNothingForMissedOccurrencesAndRecordsTheSkip) {
  const std::int64_t id = after_outage("skip", 60, 5);
  const auto fired = drain(policy());
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_TRUE(value<bool>("SELECT $1::timestamptz BETWEEN now() - interval '6 seconds' AND now()",
                          fired[0]))
      << fired[0];
  EXPECT_EQ(executions_of(id), 1);
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);
  EXPECT_TRUE(
      value<bool>("SELECT next_run_at > now() AND next_run_at <= now() + interval '60 seconds'"
                  " FROM nudge.reminders WHERE id = $1",
                  id));
  EXPECT_EQ(status(id), "ACTIVE");
  const pqxx::row a = sql("SELECT * FROM nudge.delivery_attempts WHERE reminder_id = $1 AND "
                          "outcome = 'skipped'",
                          id)
                          .at(0);
  EXPECT_TRUE(
      value<bool>("SELECT $1::timestamptz = created_at - interval '305 seconds' "
                  "FROM nudge.reminders WHERE id = $2",
                  a["scheduled_for"].as<std::string>(), id))
      << "recorded at the oldest missed occurrence";
  EXPECT_EQ(
      a["error"].as<std::string>(),
      "missed by more than 60 s (misfire_policy skip), as was every later occurrence before " +
          value<std::string>("SELECT nudge.rfc3339_in_zone($1::timestamptz, 'UTC')", fired[0]));
  // The reminder's history lists the skip, then the fire.
  EXPECT_EQ(value<std::string>("SELECT string_agg(execution->>'outcome', ',') "
                               "FROM nudge.reminder_executions($1)",
                               id),
            "delivered,skipped");
}

// Every 10 s, back from 155 s down: the ten occurrences more than 60 s late are one skipped
// attempt, and each of the six within the threshold fires, so every occurrence is fired or
// recorded (a fire took those due by its end with it, unrecorded: explore31c F3).
TEST_F(MisfireTest, SkipFiresEachOccurrenceWithinTheThresholdAndRecordsTheOlderOnes) {
  const std::int64_t id = after_outage("skip", 10, 15);
  const auto fired = drain(policy());
  ASSERT_EQ(fired.size(), 6u);
  for (std::size_t i = 1; i < fired.size(); ++i) {
    EXPECT_TRUE(value<bool>("SELECT $2::timestamptz - $1::timestamptz = interval '10 seconds'",
                            fired[i - 1], fired[i]))
        << fired[i - 1] << " then " << fired[i];
  }
  EXPECT_EQ(executions_of(id), 6);
  EXPECT_EQ(
      value<std::string>("SELECT error FROM nudge.delivery_attempts "
                         "WHERE reminder_id = $1 AND outcome = 'skipped'",
                         id),
      "missed by more than 60 s (misfire_policy skip), as was every later occurrence before " +
          value<std::string>("SELECT nudge.rfc3339_in_zone($1::timestamptz, 'UTC')", fired[0]));
  EXPECT_TRUE(
      value<bool>("SELECT next_run_at = $2::timestamptz + interval '10 seconds' "
                  "AND next_run_at > now() FROM nudge.reminders WHERE id = $1",
                  id, fired.back()));
}

// Past the threshold and no occurrence within it: nothing fires, the schedule resumes.
TEST_F(MisfireTest, SkipFiresNothingWhenNoOccurrenceIsWithinTheThreshold) {
  // Every 120 s from -570 s: -570, -450, -330, -210 and -90 s are missed, the next is at +30 s.
  const std::int64_t id = create_recurring("u-none", 120, "now() - interval '570 seconds'",
                                           ", p_misfire_policy => 'skip'");
  EXPECT_TRUE(drain(policy()).empty());
  EXPECT_EQ(executions_of(id), 0);
  EXPECT_TRUE(
      value<bool>("SELECT next_run_at BETWEEN now() + interval '20 seconds' AND now() + "
                  "interval '31 seconds' FROM nudge.reminders WHERE id = $1",
                  id));
}

TEST_F(MisfireTest, SkipStillFiresAnOccurrenceThatIsOnlySlightlyLate) {
  // 10 s late is within the 60 s threshold: load, not an outage.
  const std::int64_t id =
      create_recurring("u1", 3600, "now() - interval '10 seconds'", ", p_misfire_policy => 'skip'");
  EXPECT_EQ(drain(policy()).size(), 1u);
  EXPECT_EQ(executions_of(id), 1);
}

TEST_F(MisfireTest, FireAllFiresEachMissedOccurrenceOldestFirst) {
  const std::int64_t id = after_outage("fire_all", 60, 5);
  const auto fired = drain(policy());
  // Occurrences at -305, -245, -185, -125, -65 and -5 s: five missed, one just due.
  ASSERT_EQ(fired.size(), 6u);
  for (std::size_t i = 1; i < fired.size(); ++i) {
    EXPECT_TRUE(value<bool>("SELECT $2::timestamptz - $1::timestamptz = interval '60 seconds'",
                            fired[i - 1], fired[i]))
        << fired[i - 1] << " then " << fired[i];
  }
  EXPECT_EQ(executions_of(id), 6);
  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["fire_count"].as<int>(), 6);
  EXPECT_EQ(r["catch_up_fires"].as<int>(), 0) << "caught up";
  EXPECT_TRUE(value<bool>("SELECT next_run_at > now() FROM nudge.reminders WHERE id = $1", id));
}

// Past the cap, the newest missed occurrences (the ones nearest to now) fire and the older ones
// are dropped, as one skipped attempt at the oldest that says how many and from when to when.
TEST_F(MisfireTest, FireAllPastTheCapFiresTheNewestAndRecordsTheOlderOnesItDrops) {
  const std::int64_t id = after_outage("fire_all", 60, 10);
  const std::string oldest =
      value<std::string>("SELECT next_run_at::text FROM nudge.reminders WHERE id = $1", id);
  const auto fired = drain(policy(3));
  // Occurrences at -605, -545, ..., -65 and -5 s: eleven; the last three fire.
  ASSERT_EQ(fired.size(), 3u) << "the cap";
  EXPECT_TRUE(value<bool>("SELECT $1::timestamptz = $2::timestamptz + interval '480 seconds'",
                          fired[0], oldest))
      << fired[0] << ": the newest three fire, oldest first";
  for (std::size_t i = 1; i < fired.size(); ++i) {
    EXPECT_TRUE(value<bool>("SELECT $2::timestamptz - $1::timestamptz = interval '60 seconds'",
                            fired[i - 1], fired[i]));
  }
  EXPECT_EQ(executions_of(id), 3);
  EXPECT_TRUE(
      value<bool>("SELECT next_run_at = $2::timestamptz + interval '660 seconds' "
                  "AND next_run_at > now() FROM nudge.reminders WHERE id = $1",
                  id, oldest))
      << "back on its phase";
  const pqxx::result skipped =
      sql("SELECT scheduled_for = $2::timestamptz, error FROM nudge.delivery_attempts "
          "WHERE reminder_id = $1 AND outcome = 'skipped'",
          id, oldest);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_TRUE(skipped[0][0].as<bool>()) << "recorded at the oldest missed occurrence";
  EXPECT_EQ(skipped[0][1].as<std::string>(),
            value<std::string>(
                "SELECT format('missed: 8 occurrences from %s to %s dropped, over fire_all_cap 3 "
                "(misfire_policy fire_all keeps the newest)', "
                "nudge.rfc3339_in_zone($1::timestamptz, 'UTC'), "
                "nudge.rfc3339_in_zone($1::timestamptz + interval '420 seconds', 'UTC'))",
                oldest));
  EXPECT_EQ(value<std::string>("SELECT string_agg(execution->>'outcome', ',') "
                               "FROM nudge.reminder_executions($1)",
                               id),
            "delivered,delivered,delivered,skipped");
}

// A cron catch-up keeps the newest hours up to ends_at; a yearly reminder started in the year 1
// fires its last three years, not its first three, and the claim counts without walking every
// occurrence (2,000 years).
TEST_F(MisfireTest, FireAllPastTheCapOnACronKeepsTheNewestOccurrences) {
  const std::int64_t hourly =
      create(
          "p_entity_type => 'user', p_entity_id => 'hourly', p_event_type => 'e',"
          " p_channel => 'log', p_schedule_type => 'cron', p_cron => '0 * * * *',"
          " p_timezone => 'America/New_York', p_run_at => '2026-01-01 00:00Z',"
          " p_ends_at => '2026-01-02 00:00Z', p_misfire_policy => 'fire_all'")
          .second;
  const std::int64_t yearly =
      create(
          "p_entity_type => 'user', p_entity_id => 'yearly', p_event_type => 'e',"
          " p_channel => 'log', p_schedule_type => 'cron', p_cron => '0 0 1 1 *',"
          " p_timezone => 'America/New_York', p_run_at => '0001-01-01 00:00Z',"
          " p_misfire_policy => 'fire_all'")
          .second;
  const std::int64_t every_year = create_recurring("every-year", 31536000, "'0001-01-01 00:00Z'",
                                                   ", p_misfire_policy => 'fire_all'");
  drain(policy(5));
  EXPECT_EQ(value<std::string>("SELECT string_agg(to_char(scheduled_for AT TIME ZONE 'UTC',"
                               " 'DD HH24:MI'), ' ' ORDER BY scheduled_for) FROM nudge.executions"
                               " WHERE reminder_id = $1",
                               hourly),
            "01 20:00 01 21:00 01 22:00 01 23:00 02 00:00");
  EXPECT_EQ(reason(hourly), "ends_at");
  EXPECT_EQ(value<std::string>("SELECT error FROM nudge.delivery_attempts WHERE reminder_id = $1",
                               hourly),
            "missed: 20 occurrences from 2026-01-01T00:00:00+00:00 to 2026-01-01T19:00:00+00:00 "
            "dropped, over fire_all_cap 5 (misfire_policy fire_all keeps the newest)");
  // New York's 1 January of the last five years, each the cron's next after the one before.
  EXPECT_EQ(
      value<long>(
          "SELECT count(*) FROM nudge.executions e JOIN nudge.reminders r"
          " ON r.id = e.reminder_id WHERE r.id = $1"
          " AND (e.scheduled_for AT TIME ZONE 'America/New_York')::text LIKE '%-01-01 00:00:00'"
          " AND e.scheduled_for > now() - interval '5 years'",
          yearly),
      5);
  EXPECT_TRUE(value<bool>("SELECT next_run_at > now() FROM nudge.reminders WHERE id = $1", yearly));
  EXPECT_EQ(
      value<std::string>("SELECT error FROM nudge.delivery_attempts WHERE reminder_id = $1",
                         yearly),
      value<std::string>(
          "SELECT format('missed: %s occurrences from 0001-01-01T04:56:02+00:00 to "
          "%s-01-01T05:00:00+00:00 dropped, over fire_all_cap 5 (misfire_policy fire_all "
          "keeps the newest)', y - 5, y - 5) "
          "FROM (SELECT extract(year FROM now() AT TIME ZONE 'America/New_York')::int AS y) x"));
  EXPECT_EQ(executions_of(every_year), 5);
  EXPECT_TRUE(
      value<bool>("SELECT min(scheduled_for) > now() - interval '5 years' "
                  "FROM nudge.executions WHERE reminder_id = $1",
                  every_year));
}

TEST_F(MisfireTest, FireAllOnACronScheduleFiresEachMissedMinute) {
  const std::int64_t id =
      create(
          "p_entity_type => 'user', p_entity_id => 'cron', p_event_type => 'e', p_channel => 'log',"
          " p_schedule_type => 'cron', p_cron => '* * * * *', p_timezone => 'Europe/Berlin',"
          " p_run_at => now() - interval '4 minutes 30 seconds', p_misfire_policy => 'fire_all'")
          .second;
  const auto fired = drain(policy());
  // The minutes starting in the last 4.5 minutes: 4 of them (5 if a minute turned meanwhile).
  ASSERT_GE(fired.size(), 4u);
  ASSERT_LE(fired.size(), 5u);
  std::set<std::string> distinct(fired.begin(), fired.end());
  EXPECT_EQ(distinct.size(), fired.size());
  for (const auto& at : fired) {
    EXPECT_TRUE(value<bool>("SELECT extract(second FROM $1::timestamptz) = 0", at)) << at;
  }
  EXPECT_EQ(executions_of(id), static_cast<long>(fired.size()));
}

TEST_F(MisfireTest, FireAllOnACronScheduleFiresBothPassesOfTheRepeatedHourEveryFiveMinutes) {
  // Europe/Berlin's fall-back night of 2026 (long past): 02:00-02:59 happens twice, at
  // 00:00-00:59Z (CEST) and at 01:00-01:59Z (CET). The worker's claim and finish statements
  // catch up on it occurrence by occurrence.
  const std::int64_t id =
      create(
          "p_entity_type => 'user', p_entity_id => 'night', p_event_type => 'e',"
          " p_channel => 'log', p_schedule_type => 'cron', p_cron => '*/5 * * * *',"
          " p_timezone => 'Europe/Berlin', p_run_at => '2026-10-24 23:58Z',"
          " p_ends_at => '2026-10-25 02:00Z', p_misfire_policy => 'fire_all'")
          .second;
  const auto fired = drain(policy());
  EXPECT_EQ(fired.size(), 25u);
  // Every 5 real minutes from 02:00 CEST to 03:00 CET: both passes, none skipped, none twice.
  EXPECT_EQ(value<std::string>("SELECT string_agg(to_char(scheduled_for AT TIME ZONE 'UTC',"
                               " 'HH24:MI'), ' ' ORDER BY scheduled_for) FROM nudge.executions"
                               " WHERE reminder_id = $1",
                               id),
            "00:00 00:05 00:10 00:15 00:20 00:25 00:30 00:35 00:40 00:45 00:50 00:55 "
            "01:00 01:05 01:10 01:15 01:20 01:25 01:30 01:35 01:40 01:45 01:50 01:55 "
            "02:00");
  EXPECT_EQ(value<long>("SELECT count(DISTINCT scheduled_for AT TIME ZONE 'Europe/Berlin')"
                        "  FROM nudge.executions WHERE reminder_id = $1",
                        id),
            13)
      << "02:00-02:55 twice, 03:00 once";
  EXPECT_EQ(reason(id), "ends_at");
}

// Past the cap across a fall-back: the repeated hour counted once on the clock started the kept
// stretch an hour early, and the newest hour was never fired nor recorded (explore11a).
TEST_F(MisfireTest, FireAllPastTheCapAcrossAFallBackKeepsTheNewest) {
  const std::int64_t id =
      create(
          "p_entity_type => 'user', p_entity_id => 'fall', p_event_type => 'e',"
          " p_channel => 'log', p_schedule_type => 'cron', p_cron => '*/5 * * * *',"
          " p_timezone => 'Europe/Berlin', p_run_at => '2026-10-24 22:00Z',"
          " p_ends_at => '2026-10-25 03:00Z', p_misfire_policy => 'fire_all'")
          .second;
  const auto fired = drain(policy(30));
  // 61 occurrences 22:00Z..03:00Z (02:00-02:55 Berlin time twice); the newest 30, both passes
  // of the repeated hour among them: 00:35Z..03:00Z.
  ASSERT_EQ(fired.size(), 30u);
  EXPECT_EQ(value<std::string>("SELECT to_char(min(scheduled_for) AT TIME ZONE 'UTC', 'HH24:MI') "
                               "|| ' ' || to_char(max(scheduled_for) AT TIME ZONE 'UTC', "
                               "'HH24:MI') FROM nudge.executions WHERE reminder_id = $1",
                               id),
            "00:35 03:00");
  EXPECT_EQ(
      value<std::string>("SELECT error FROM nudge.delivery_attempts WHERE reminder_id = $1", id),
      "missed: 31 occurrences from 2026-10-24T22:00:00+00:00 to 2026-10-25T00:30:00+00:00 "
      "dropped, over fire_all_cap 30 (misfire_policy fire_all keeps the newest)");
  EXPECT_EQ(reason(id), "ends_at");
}

// 151 missed minutes across the night Berlin's clocks go back: 91 on the clock, which counts the
// repeated hour once. The newest 100 fire, both passes of that hour among them (explore29b
// HIGH-1: the clock's count was under the cap, the oldest 100 fired and the newest 51 were lost
// with no record).
TEST_F(MisfireTest, FireAllOverTheCapOnlyCountingBothPassesOfAFallBackKeepsTheNewest) {
  const std::int64_t id =
      create(
          "p_entity_type => 'user', p_entity_id => 'fall', p_event_type => 'e',"
          " p_channel => 'log', p_schedule_type => 'cron', p_cron => '* * * * *',"
          " p_timezone => 'Europe/Berlin', p_run_at => '2026-10-24 23:00Z',"
          " p_ends_at => '2026-10-25 01:30Z', p_misfire_policy => 'fire_all'")
          .second;
  const auto fired = drain(policy(100));
  ASSERT_EQ(fired.size(), 100u);
  EXPECT_EQ(value<std::string>("SELECT to_char(min(scheduled_for) AT TIME ZONE 'UTC', 'HH24:MI') "
                               "|| ' ' || to_char(max(scheduled_for) AT TIME ZONE 'UTC', "
                               "'HH24:MI') FROM nudge.executions WHERE reminder_id = $1",
                               id),
            "23:51 01:30");
  EXPECT_EQ(
      value<std::string>("SELECT error FROM nudge.delivery_attempts WHERE reminder_id = $1", id),
      "missed: 51 occurrences from 2026-10-24T23:00:00+00:00 to 2026-10-24T23:50:00+00:00 "
      "dropped, over fire_all_cap 100 (misfire_policy fire_all keeps the newest)");
}

// 76 missed minutes across the night Berlin's clocks go forward (the hour the gap skips fires
// once, at its end): under the cap, every one fires (explore29b MEDIUM-1: the clock counted the
// gap's 60 minutes, 40 fired and 36 were recorded as over the cap).
TEST_F(MisfireTest, FireAllUnderTheCapAcrossASpringForwardFiresEveryOccurrence) {
  const std::int64_t id =
      create(
          "p_entity_type => 'user', p_entity_id => 'spring', p_event_type => 'e',"
          " p_channel => 'log', p_schedule_type => 'cron', p_cron => '* * * * *',"
          " p_timezone => 'Europe/Berlin', p_run_at => '2026-03-29 00:00Z',"
          " p_ends_at => '2026-03-29 01:15Z', p_misfire_policy => 'fire_all'")
          .second;
  const auto fired = drain(policy(100));
  EXPECT_EQ(fired.size(), 76u);
  EXPECT_EQ(count("nudge.delivery_attempts WHERE outcome = 'skipped'"), 0);
  EXPECT_EQ(executions_of(id), 76);
}

// Which occurrences a catch-up keeps is exactly what walking every one with nudge.cron_next
// gives, in stretches around daylight-saving changes of zones with an hour, half an hour or a
// midnight change, for schedules that fire through, at and around the changed hour.
TEST_F(MisfireTest, TheCatchUpsKeptOccurrencesAreTheWalkedOnesAcrossClockChanges) {
  sql(R"(CREATE FUNCTION pg_temp.walked(r nudge.reminders, hi timestamptz) RETURNS timestamptz[]
         LANGUAGE plpgsql AS $$
         DECLARE a timestamptz[] := '{}'; t timestamptz := r.next_run_at;
         BEGIN
           WHILE t IS NOT NULL AND t <= hi LOOP
             a := a || t; t := nudge.cron_next(r.cron_schedule, r.timezone, t);
           END LOOP;
           RETURN a;
         END $$)");
  sql(R"(SELECT nudge.create_reminder(p_entity_type => 'walk', p_entity_id => z || ' ' || c,
           p_event_type => 'e', p_channel => 'log', p_schedule_type => 'cron', p_cron => c,
           p_timezone => z, p_misfire_policy => 'fire_all', p_run_at => '2090-01-01Z')
           FROM unnest(ARRAY['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe',
                             'America/Santiago']) z,
                unnest(ARRAY['*/5 * * * *', '* 2 * * *', '30 1,2 * * *', '*/7 0-3 * * *']) c)");
  // Stretches starting every 107 minutes from 9 hours before each change, 3 or 11 hours long,
  // caps 20 and 100: the first kept, the last dropped and how many were dropped.
  EXPECT_EQ(value<std::string>(R"(
      WITH changes(zone, at) AS (VALUES
             ('Europe/Berlin', timestamptz '2026-10-25 01:00Z'), ('Europe/Berlin', '2026-03-29 01:00Z'),
             ('America/New_York', '2026-11-01 06:00Z'), ('America/New_York', '2026-03-08 07:00Z'),
             ('Australia/Lord_Howe', '2026-04-04 15:00Z'), ('Australia/Lord_Howe', '2026-10-03 15:30Z'),
             ('America/Santiago', '2026-04-05 03:00Z'), ('America/Santiago', '2026-09-06 04:00Z')),
           stretches AS (
             SELECT jsonb_populate_record(r, jsonb_build_object('next_run_at',
                      nudge.cron_next(r.cron_schedule, r.timezone, ch.at + s * interval '107 minutes'
                                                                   - interval '9 hours'))) AS r,
                    ch.at + s * interval '107 minutes' - interval '9 hours' + h * interval '8 hours'
                      + interval '3 hours' AS hi, cap
               FROM changes ch JOIN nudge.reminders r ON r.timezone = ch.zone,
                    generate_series(0, 4) s, generate_series(0, 1) h, unnest(ARRAY[20, 100]) cap),
           compared AS (
             SELECT st.r, st.hi, st.cap, w.a, k.*
               FROM stretches st, LATERAL pg_temp.walked(st.r, st.hi) w(a),
                    LATERAL nudge.catch_up_kept(st.r, st.cap, st.hi) k)
      SELECT count(*) || ' compared, ' || count(*) FILTER (WHERE cardinality(a) > cap) || ' over the cap, '
             || count(*) FILTER (WHERE
                  first_kept IS DISTINCT FROM CASE WHEN cardinality(a) > cap THEN a[cardinality(a) - cap + 1] END
                  OR last_dropped IS DISTINCT FROM CASE WHEN cardinality(a) > cap THEN a[cardinality(a) - cap] END
                  OR dropped IS DISTINCT FROM CASE WHEN cardinality(a) > cap THEN cardinality(a) - cap END)
             || ' wrong' || coalesce(': ' || min(((r).entity_id || ' from ' || (r).next_run_at || ' to ' || hi
                                                  || ' cap ' || cap)) FILTER (WHERE
                  first_kept IS DISTINCT FROM CASE WHEN cardinality(a) > cap THEN a[cardinality(a) - cap + 1] END
                  OR dropped IS DISTINCT FROM CASE WHEN cardinality(a) > cap THEN cardinality(a) - cap END), '')
        FROM compared)"),
            "640 compared, 196 over the cap, 0 wrong");
}

TEST_F(MisfireTest, SkipOnACronScheduleMovesToTheNextFutureOccurrence) {
  const std::int64_t id =
      create(
          "p_entity_type => 'user', p_entity_id => 'cron', p_event_type => 'e', p_channel => 'log',"
          " p_schedule_type => 'cron', p_cron => '*/5 * * * *', p_run_at => now() - interval '1 "
          "hour',"
          " p_misfire_policy => 'skip'")
          .second;
  // At most the occurrence of the last five minutes fires, when it is within the threshold.
  for (const auto& t : drain(policy()))
    EXPECT_TRUE(value<bool>("SELECT $1::timestamptz >= now() - interval '61 seconds'", t)) << t;
  EXPECT_TRUE(value<bool>(
      "SELECT next_run_at > now() AND next_run_at <= now() + interval '5 minutes'"
      " AND extract(minute FROM next_run_at)::int % 5 = 0 FROM nudge.reminders WHERE id = $1",
      id));
}

TEST_F(MisfireTest, PoliciesApplyToAReminderResumedAfterALongPause) {
  const std::int64_t once = create_recurring("once", 60, kDue, "");
  const std::int64_t skip = create_recurring("skip", 60, kDue, ", p_misfire_policy => 'skip'");
  const std::int64_t all = create_recurring("all", 60, kDue, ", p_misfire_policy => 'fire_all'");
  for (const std::int64_t id : {once, skip, all}) {
    sql("SELECT nudge.pause_reminder($1)", id);
  }
  // Paused for five minutes: the occurrence it was waiting for is five minutes old.
  sql("UPDATE nudge.reminders SET next_run_at = next_run_at - interval '5 minutes'");
  for (const std::int64_t id : {once, skip, all}) {
    sql("SELECT nudge.resume_reminder($1)", id);
  }
  drain(policy());
  EXPECT_EQ(executions_of(once), 1);
  EXPECT_EQ(executions_of(skip), 1) << "the occurrence due as it resumed; five were skipped";
  EXPECT_GE(executions_of(all), 5);
  EXPECT_LE(executions_of(all), 6);
}

TEST_F(MisfireTest, OneTimeRemindersOnlyTakeFireOnce) {
  const SqlFailure f = failure_of("SELECT * FROM nudge.create_reminder(" + one_time_args("u1") +
                                  ", p_misfire_policy => 'skip')");
  EXPECT_EQ(f.sqlstate, "22023");
  EXPECT_EQ(f.message, "misfire_policy: is only for recurring and cron reminders");
  const SqlFailure unknown =
      failure_of("SELECT * FROM nudge.create_reminder(" + recurring_args("u2", 60) +
                 ", p_misfire_policy => 'fire_twice')");
  EXPECT_EQ(unknown.sqlstate, "22023");
  EXPECT_EQ(unknown.message, "misfire_policy: must be one of fire_once, skip, fire_all");
}

TEST_F(MisfireTest, FireAllRespectsEndsAtAndMaxFiresWhileCatchingUp) {
  const std::int64_t capped =
      create_recurring("capped", 60, "now() - interval '305 seconds'",
                       ", p_misfire_policy => 'fire_all', p_max_fires => 2");
  const std::int64_t ending = create_recurring(
      "ending", 60, "now() - interval '305 seconds'",
      ", p_misfire_policy => 'fire_all', p_ends_at => now() - interval '200 seconds'");
  drain(policy());
  EXPECT_EQ(executions_of(capped), 2);
  EXPECT_EQ(reason(capped), "max_fires");
  EXPECT_EQ(executions_of(ending), 2) << "-305 and -245; -185 is after ends_at";
  EXPECT_EQ(reason(ending), "ends_at");
}

}  // namespace
}  // namespace nudge::test
