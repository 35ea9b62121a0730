// POST /v1/schedules/preview: the next fire times of a schedule, in its zone, or the error a
// create would give.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using Preview = ApiTest;

TEST_F(Preview, CronTimesComeInTheScheduleZoneThroughTheSpringGap) {
  const auto r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "30 2 * * *",
      "timezone": "Europe/Berlin", "from": "2026-03-28T12:00:00Z", "count": 3})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
                                   "2026-03-31T02:30:00+02:00"}));
}

TEST_F(Preview, CronTimesRunThroughTheWholeFirstPassOfTheRepeatedHourThenTheSecond) {
  const auto r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "*/30 * * * *",
      "timezone": "Europe/Berlin", "from": "2026-10-24T23:45:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                                   "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
                                   "2026-10-25T03:00:00+01:00"}));
}

TEST_F(Preview, DefaultsAreFiveTimesFromNowInUtc) {
  const auto r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "@hourly"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  ASSERT_EQ(r.body["times"].size(), 5u);
  EXPECT_EQ(r.body["times"][0].get<std::string>().substr(13), ":00:00+00:00");
}

TEST_F(Preview, RecurringAndOneTimeSchedules) {
  // Created at 01:00 with its first fire at 00:00, past: that fire happens at once (misfire
  // policy fire_once), then the schedule goes on from its start.
  auto r = post("/v1/schedules/preview", R"({"schedule_type": "recurring", "interval_minutes": 90,
      "run_at": "2026-01-01T00:00:00Z", "from": "2026-01-01T01:00:00Z", "count": 3})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2026-01-01T01:00:00+00:00", "2026-01-01T01:30:00+00:00",
                                   "2026-01-01T03:00:00+00:00"}));
  r = post("/v1/schedules/preview",
           R"({"schedule_type": "one_time", "run_at": "2030-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2030-01-01T00:00:00+00:00"}));
}

// The fires of a reminder created at `from`: an interval schedule without run_at fires at once,
// as its create does, and a fire at exactly `from` is listed.
TEST_F(Preview, TheTimesAreThoseOfAReminderCreatedAtFrom) {
  auto r = post("/v1/schedules/preview", R"({"schedule_type": "recurring", "interval_seconds": 3600,
      "from": "2030-01-01T10:00:00Z", "max_fires": 2})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2030-01-01T10:00:00+00:00", "2030-01-01T11:00:00+00:00"}));
  r = post("/v1/schedules/preview", R"({"schedule_type": "one_time",
      "run_at": "2030-01-01T10:00:00Z", "from": "2030-01-01T10:00:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2030-01-01T10:00:00+00:00"}));
  r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "0 10 * * *",
      "from": "2030-01-01T10:00:00Z", "count": 2})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2030-01-01T10:00:00+00:00", "2030-01-02T10:00:00+00:00"}));
}

// A first fire already past fires at once when the reminder is created: the preview lists it at
// `from`, and counts it against max_fires, as the reminder does.
TEST_F(Preview, AFirstFireAlreadyPastIsListedAtFrom) {
  auto r = post("/v1/schedules/preview", R"({"schedule_type": "one_time",
      "run_at": "2030-01-01T09:50:00Z", "from": "2030-01-01T10:00:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2030-01-01T10:00:00+00:00"}));
  r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "0 9 * * *",
      "timezone": "Asia/Tokyo", "run_at": "2030-01-01T00:00:00Z", "from": "2030-01-01T10:00:00Z",
      "max_fires": 2})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2030-01-01T19:00:00+09:00", "2030-01-02T09:00:00+09:00"}));
  // A cron whose first occurrence after a past run_at is still ahead has nothing to catch up.
  r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "0 12 * * *",
      "run_at": "2030-01-01T09:00:00Z", "from": "2030-01-01T10:00:00Z", "count": 1})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2030-01-01T12:00:00+00:00"}));
}

// A created reminder fires where its preview said: the first two fires of an interval reminder
// without run_at, read back from the reminder, are the preview's first two from its creation.
TEST_F(Preview, ARecurringCreateWithoutRunAtFiresWhereThePreviewSaid) {
  const auto created = post("/v1/reminders", R"({"entity_type": "p", "entity_id": "1",
      "event_type": "x", "channel": "log", "schedule_type": "recurring", "interval_seconds": 3600})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const std::string next = created.body["next_run_at"];
  const auto r = post(
      "/v1/schedules/preview",
      json{{"schedule_type", "recurring"}, {"interval_seconds", 3600}, {"from", next}, {"count", 1}}
          .dump());
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(value<double>("SELECT extract(epoch FROM $1::timestamptz)",
                          r.body["times"][0].get<std::string>()),
            value<double>("SELECT extract(epoch FROM $1::timestamptz)", next));
}

// The limits that end a reminder are said in the sentence ("until ...", "at most N times"), and
// no fire past them is listed, as the reminder will not fire there.
TEST_F(Preview, MaxFiresAndEndsAtAreSaidAndNoFirePastThemIsListed) {
  auto r = post("/v1/schedules/preview", R"({"schedule_type": "recurring", "interval_seconds": 7200,
      "run_at": "2030-01-01T00:00:00Z", "from": "2029-12-31T00:00:00Z", "max_fires": 3})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2030-01-01T00:00:00+00:00", "2030-01-01T02:00:00+00:00",
                                   "2030-01-01T04:00:00+00:00"}));
  const std::string capped = r.body["schedule_text"];
  EXPECT_NE(capped.find("3 times"), std::string::npos) << capped;
  r = post("/v1/schedules/preview", R"({"schedule_type": "recurring", "interval_seconds": 900,
      "run_at": "2030-01-01T17:00:00Z", "from": "2029-12-31T00:00:00Z",
      "ends_at": "2030-01-01T17:30:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  // A fire at ends_at still happens.
  EXPECT_EQ(r.body["times"], json({"2030-01-01T17:00:00+00:00", "2030-01-01T17:15:00+00:00",
                                   "2030-01-01T17:30:00+00:00"}));
  const std::string ended = r.body["schedule_text"];
  EXPECT_NE(ended.find("until 2030-01-01"), std::string::npos) << ended;
  // Without them, the sentence and the list are as before.
  r = post("/v1/schedules/preview", R"({"schedule_type": "recurring", "interval_seconds": 900,
      "run_at": "2030-01-01T17:00:00Z", "from": "2029-12-31T00:00:00Z"})");
  EXPECT_EQ(r.body["times"].size(), 5u);
  EXPECT_EQ(r.body["schedule_text"].get<std::string>().find("until"), std::string::npos);
  // A stop flag is said too, and lists the same times (explore27a DOC 8: the dashboard's words
  // box set one, and its preview said all but it).
  r = post("/v1/schedules/preview", R"({"schedule_type": "recurring", "interval_seconds": 900,
      "run_at": "2030-01-01T17:00:00Z", "from": "2029-12-31T00:00:00Z",
      "stop_condition_type": "db_check", "stop_condition_value": "feedback_submitted"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"].size(), 5u);
  const std::string stopped = r.body["schedule_text"];
  EXPECT_NE(stopped.find("until feedback_submitted is true"), std::string::npos) << stopped;
}

// The dashboard's form is in the browser's zone: the sentence of an interval or one-time schedule
// says its times in the zone asked for (UTC by default); a cron's is in the cron's own zone, so
// it refuses one (which it would ignore, unchecked).
TEST_F(Preview, TheSentenceNamesAnIntervalSchedulesTimesInTheTextTimezone) {
  const std::string schedule = R"("schedule_type": "recurring", "interval_seconds": 86400,
      "run_at": "2027-03-13T14:00:00Z", "ends_at": "2027-03-16T13:00:00Z")";
  auto r =
      post("/v1/schedules/preview", "{" + schedule + R"(, "text_timezone": "America/New_York"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["schedule_text"],
            "every 24 hours, starting 2027-03-13 at 09:00, until 2027-03-16 at 09:00 "
            "(America/New_York)");
  r = post("/v1/schedules/preview", "{" + schedule + "}");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["schedule_text"],
            "every 24 hours, starting 2027-03-13 at 14:00, until 2027-03-16 at 13:00 (UTC)");
  r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "0 9 * * *",
      "timezone": "Europe/Berlin"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["schedule_text"], "every day at 09:00 (Europe/Berlin)");
  for (const std::string zone : {"America/New_York", "Mars"}) {
    r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "0 9 * * *",
        "timezone": "Europe/Berlin", "text_timezone": ")" +
                                          zone + "\"}");
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.body["error"]["field"], "text_timezone") << r.body.dump();
  }
  r = post("/v1/schedules/preview", "{" + schedule + R"(, "text_timezone": "Nowhere/Zone"})");
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.body["error"]["field"], "text_timezone") << r.body.dump();
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("Nowhere/Zone"), std::string::npos)
      << r.body.dump();
}

TEST_F(Preview, NoTimeComesAfterTheLastYearRfc3339CanWrite) {
  auto r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "0 0 1 */3 *",
      "run_at": "9999-06-01T00:00:00Z", "count": 5})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"9999-07-01T00:00:00+00:00", "9999-10-01T00:00:00+00:00"}));
  r = post("/v1/schedules/preview", R"({"schedule_type": "recurring", "interval_seconds": 31622400,
      "run_at": "9998-06-01T00:00:00Z", "from": "9998-01-01T00:00:00Z", "count": 5})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"9998-06-01T00:00:00+00:00", "9999-06-02T00:00:00+00:00"}));
}

// RFC 3339 offsets are whole minutes and years four digits: a time its zone cannot write so is
// written in UTC, the same instant.
TEST_F(Preview, ATimeItsZoneCannotWriteTheRfc3339WayIsWrittenInUtc) {
  auto r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "30 1 * * *",
      "timezone": "Europe/Berlin", "from": "1890-01-01T00:00:00Z", "count": 1})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"1890-01-01T00:36:32+00:00"}));  // 01:30 at +00:53:28
  r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "0 0 1 1 *",
      "timezone": "Pacific/Kiritimati", "from": "9999-12-31T00:00:00Z", "count": 5})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"9999-12-31T10:00:00+00:00"}));
  r = post("/v1/schedules/preview", R"({"schedule_type": "cron", "cron": "0 0 1 1 *",
      "timezone": "Pacific/Kiritimati", "from": "9998-12-01T00:00:00Z", "count": 1})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"9999-01-01T00:00:00+14:00"}));
}

TEST_F(Preview, BadSchedulesGetTheErrorACreateWouldGive) {
  struct Case {
    std::string body, field, message_part;
  };
  const std::vector<Case> cases = {
      {R"({"schedule_type": "cron", "cron": "0 0 32 * *"})", "cron", "day-of-month"},
      {R"({"schedule_type": "cron", "cron": "0 0 * *"})", "cron", "5 fields"},
      {R"({"schedule_type": "cron", "cron": "@reboot"})", "cron", "macro"},
      {R"({"schedule_type": "cron", "cron": "0 0 * * *", "timezone": "Mars/Base"})", "timezone",
       "Mars/Base"},
      {R"({"schedule_type": "cron", "cron": "0 9 * * *", "timezone": "Etc/GMT+99"})", "timezone",
       "is an offset, not a time zone name"},
      {R"({"schedule_type": "cron"})", "cron", "required"},
      {R"({"schedule_type": "cron", "cron": "* * * * *", "count": 101})", "count", "between"},
      {R"({"schedule_type": "cron", "cron": "* * * * *", "count": 0})", "count", "between"},
      {R"({"schedule_type": "recurring"})", "interval_seconds",
       "interval_seconds: is required for recurring (or interval_minutes)"},
      {R"({"schedule_type": "recurring", "interval_seconds": 60, "cron": "* * * * *"})", "cron",
       "only for cron"},
      {R"({"schedule_type": "one_time"})", "run_at", "required"},
      {R"({"schedule_type": "one_time", "run_at": "9999-12-31T23:59:59-01:00"})", "run_at",
       "9999-12-31T23:59:59Z"},
      {R"({"schedule_type": "weekly"})", "schedule_type", "one of"},
      {R"({"schedule_type": "cron", "cron": "* * * * *", "form": "2026-01-01T00:00:00Z"})", "form",
       "not a known"},
      {R"({"schedule_type": "cron", "cron": "* * * * *", "from": "yesterday"})", "from",
       "RFC 3339"},
      {R"({"schedule_type": "cron", "cron": "* * * * *", "max_fires": 0})", "max_fires", "between"},
      {R"({"schedule_type": "cron", "cron": "* * * * *", "ends_at": "6pm"})", "ends_at",
       "RFC 3339"},
      {R"({"schedule_type": "cron", "cron": "* * * * *", "stop_condition_value": "f"})",
       "stop_condition_type", "required"},
      {R"({"schedule_type": "cron", "cron": "* * * * *", "stop_condition_type": "db_check"})",
       "stop_condition_value", "required"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    const auto r = post("/v1/schedules/preview", c.body);
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find(c.message_part), std::string::npos)
        << r.body.dump();
  }
}

// A recurring schedule without its interval: the error of a create, code and words.
TEST_F(Preview, AMissingIntervalIsRefusedAsACreateRefusesIt) {
  const auto preview = post("/v1/schedules/preview", R"({"schedule_type": "recurring"})");
  const auto create = post("/v1/reminders", R"({"entity_type": "p", "entity_id": "1",
      "event_type": "x", "channel": "log", "schedule_type": "recurring"})");
  EXPECT_EQ(preview.status, 400) << preview.body.dump();
  EXPECT_EQ(create.status, 400) << create.body.dump();
  EXPECT_EQ(preview.body["error"], create.body["error"]);
  EXPECT_EQ(preview.body["error"]["code"], "missing_field");
}

}  // namespace
}  // namespace nudge::test
