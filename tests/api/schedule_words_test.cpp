// POST /v1/schedules/parse and the sentences schedules say themselves in: every phrase of the
// tables (tests/schedule_words_cases.hpp) with its whole answer and first fire, every refusal
// with the word it names; every canonical sentence reads back to its schedule, for the tables'
// phrases and for random schedules (a seeded property, with cron checked against the engine's own
// next 20 fires); reminders and previews carry their sentence; and the route's own errors.

#include "schedule_words.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "api/api_fixture.hpp"
#include "schedule_words_cases.hpp"
#include "support/test_seed.hpp"
#include "word_lexicon.hpp"

namespace nudge::test {
namespace {

namespace cases = test::words;

class WordsTest : public ApiTest {
 protected:
  Reply parse(const std::string& text, const std::string& zone = cases::kZone,
              const std::optional<std::string>& now = std::string(cases::kNow)) {
    json body{{"text", text}, {"timezone", zone}};
    if (now) body["now"] = *now;
    return post("/v1/schedules/parse", body.dump());
  }

  // The same instant, whatever the offsets of the two texts.
  bool same_instant(const json& a, const json& b) {
    if (a.is_null() || b.is_null()) return a.is_null() && b.is_null();
    return value<bool>("SELECT $1::timestamptz = $2::timestamptz", a.get<std::string>(),
                       b.get<std::string>());
  }

  // The same cron schedule: the same parsed expression (masks and the flags that change how
  // cron fires), and so the same fires.
  bool same_cron(const std::string& a, const std::string& b) {
    return value<bool>("SELECT nudge.cron_parse($1) = nudge.cron_parse($2)", a, b);
  }

  // The next n fires of an expression as the engine computes them: nudge.cron_next, each from
  // the one before, the first at or after the tables' now (as a create takes it).
  std::vector<std::string> engine_fires(const std::string& cron, const std::string& zone, int n) {
    std::vector<std::string> out;
    for (const auto& row : sql("WITH RECURSIVE c AS (SELECT nudge.cron_parse($1) AS e), "
                               "f(i, t) AS (SELECT 1, nudge.cron_next(c.e, $2, $3::timestamptz - "
                               "interval '1 microsecond') FROM c "
                               "UNION ALL SELECT f.i + 1, nudge.cron_next(c.e, $2, f.t) FROM f, c "
                               "WHERE f.i < $4 AND f.t IS NOT NULL) "
                               "SELECT t::text FROM f ORDER BY i",
                               cron, zone, std::string(cases::kNow), n))
      out.push_back(row[0].is_null() ? "never" : row[0].as<std::string>());
    return out;
  }

  // A valid expression: one that has a next fire.
  bool fires(const std::string& cron) {
    try {
      return value<bool>(
          "SELECT nudge.cron_next(nudge.cron_parse($1), 'UTC', $2::timestamptz) IS NOT NULL", cron,
          std::string(cases::kNow));
    } catch (const pqxx::sql_error&) {
      return false;
    }
  }

  // Two answers' schedules are the same schedule.
  void expect_same_schedule(const json& got, const json& want) {
    for (const char* key : {"schedule_type", "interval_seconds", "timezone", "stop_condition_type",
                            "stop_condition_value", "max_fires"}) {
      EXPECT_EQ(got.value(key, json()), want.value(key, json())) << key;
    }
    // No run_at starts at the parse's now: "for 2 hours" gives that now, its sentence an end.
    EXPECT_TRUE(same_instant(got.value("run_at", json(cases::kNow)),
                             want.value("run_at", json(cases::kNow))))
        << got.dump() << " vs " << want.dump();
    EXPECT_TRUE(same_instant(got.value("ends_at", json()), want.value("ends_at", json())))
        << got.dump() << " vs " << want.dump();
    EXPECT_EQ(got.contains("cron"), want.contains("cron"));
    if (got.contains("cron") && want.contains("cron")) {
      EXPECT_TRUE(same_cron(got["cron"], want["cron"])) << got["cron"] << " vs " << want["cron"];
    }
  }
};

TEST_F(WordsTest, EveryAcceptedPhraseGivesItsScheduleAndFirstFire) {
  for (const auto& c : cases::kAccepted) {
    SCOPED_TRACE(std::string(c.text) + " in " + c.zone);
    const auto r = parse(c.text, c.zone);
    ASSERT_EQ(r.status, 200) << r.body.dump();
    EXPECT_EQ(r.body["schedule"], json::parse(c.schedule));
    ASSERT_FALSE(r.body["times"].empty());
    EXPECT_EQ(r.body["times"][0], c.first_fire);
    EXPECT_FALSE(r.body["text"].get<std::string>().empty());
  }
}

TEST_F(WordsTest, EveryAcceptedPhrasesSentenceReadsBackToTheSameSchedule) {
  for (const auto& c : cases::kAccepted) {
    SCOPED_TRACE(std::string(c.text) + " in " + c.zone);
    const auto first = parse(c.text, c.zone);
    ASSERT_EQ(first.status, 200) << first.body.dump();
    // Read in another zone: the sentence names its own where it matters.
    const auto again = parse(first.body["text"], "UTC");
    ASSERT_EQ(again.status, 200) << first.body["text"] << ": " << again.body.dump();
    expect_same_schedule(again.body["schedule"], first.body["schedule"]);
    EXPECT_EQ(again.body["text"], first.body["text"]) << "the sentence is canonical";
    // The same instants (an interval without a start names no zone: its times are written in
    // the zone each parse is given).
    ASSERT_EQ(again.body["times"].size(), first.body["times"].size());
    for (std::size_t i = 0; i < first.body["times"].size(); ++i)
      EXPECT_TRUE(same_instant(again.body["times"][i], first.body["times"][i])) << i;
  }
}

TEST_F(WordsTest, EveryRefusedPhraseIsA422NamingTheWord) {
  std::vector<cases::Refused> all(std::begin(cases::kRefused), std::end(cases::kRefused));
  all.insert(all.end(), std::begin(cases::kRefusedByTheDatabase),
             std::end(cases::kRefusedByTheDatabase));
  for (const auto& c : all) {
    SCOPED_TRACE(c.text);
    const auto r = parse(c.text);
    ASSERT_EQ(r.status, 422) << r.body.dump();
    const json& error = r.body["error"];
    EXPECT_EQ(error["code"], "not_understood");
    EXPECT_EQ(error["field"], "text");
    const auto& unparsed = error["unparsed"];
    EXPECT_NE(std::find(unparsed.begin(), unparsed.end(), c.word), unparsed.end())
        << unparsed.dump();
    EXPECT_NE(error["message"].get<std::string>().find(c.because), std::string::npos)
        << error["message"];
  }
  EXPECT_GE(all.size(), 60u);
}

TEST_F(WordsTest, AParsedScheduleMergedIntoACreateCreatesThatReminder) {
  int n = 0;
  for (const char* text : {"every weekday at 9am until feedback_submitted, 5 times",
                           "tomorrow at 9", "every 2 hours starting tomorrow for 3 days",
                           "on the last day of every month at 17:00 New York time"}) {
    SCOPED_TRACE(text);
    const auto parsed = parse(text, "Europe/Berlin", std::nullopt);
    ASSERT_EQ(parsed.status, 200) << parsed.body.dump();
    json create{{"entity_type", "user"},
                {"entity_id", "u" + std::to_string(++n)},
                {"event_type", "words"},
                {"channel", "log"}};
    create.update(parsed.body["schedule"]);
    const auto made = post("/v1/reminders", create.dump());
    ASSERT_EQ(made.status, 201) << made.body.dump();
    for (const auto& [key, want] : parsed.body["schedule"].items()) {
      if (key == "run_at" || key == "ends_at") continue;
      EXPECT_EQ(made.body[key], want) << key;
    }
    EXPECT_TRUE(same_instant(made.body.value("ends_at", json()),
                             parsed.body["schedule"].value("ends_at", json())));
    EXPECT_TRUE(same_instant(made.body["next_run_at"], parsed.body["times"][0]))
        << "the first fire is the preview's first time";
  }
}

TEST_F(WordsTest, AReminderSaysItsScheduleAndItsSentenceReadsBackToIt) {
  const auto made = post("/v1/reminders", R"({"entity_type": "user", "entity_id": "ann",
      "event_type": "feedback", "channel": "log", "schedule_type": "cron", "cron": "0 9 * * 1-5",
      "timezone": "Europe/Berlin", "stop_condition_type": "db_check",
      "stop_condition_value": "feedback_submitted", "max_fires": 5})");
  ASSERT_EQ(made.status, 201) << made.body.dump();
  const std::string text = made.body["schedule_text"];
  EXPECT_EQ(text,
            "every weekday at 09:00 (Europe/Berlin), until feedback_submitted is true, at most 5 "
            "times");
  const long id = made.body["id"];
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(id)).body["schedule_text"], text);
  EXPECT_EQ(get("/v1/reminders").body["items"][0]["schedule_text"], text);
  const auto back = parse(text, "UTC", std::nullopt);
  ASSERT_EQ(back.status, 200) << back.body.dump();
  EXPECT_EQ(back.body["schedule"], json({{"schedule_type", "cron"},
                                         {"cron", "0 9 * * 1-5"},
                                         {"timezone", "Europe/Berlin"},
                                         {"stop_condition_type", "db_check"},
                                         {"stop_condition_value", "feedback_submitted"},
                                         {"max_fires", 5}}));

  const auto once = post("/v1/reminders", R"({"entity_type": "user", "entity_id": "bob",
      "event_type": "call", "channel": "log", "schedule_type": "one_time",
      "run_at": "2099-01-01T08:30:00Z"})");
  ASSERT_EQ(once.status, 201) << once.body.dump();
  EXPECT_EQ(once.body["schedule_text"], "once on 2099-01-01 at 08:30 (UTC)");
  const auto every = post("/v1/reminders", R"({"entity_type": "user", "entity_id": "cy",
      "event_type": "nag", "channel": "log", "schedule_type": "recurring",
      "interval_minutes": 90, "ends_at": "2099-01-01T00:00:00Z"})");
  ASSERT_EQ(every.status, 201) << every.body.dump();
  EXPECT_EQ(every.body["schedule_text"], "every 90 minutes, until 2099-01-01 at 00:00 (UTC)");
}

TEST_F(WordsTest, ThePreviewSaysItsScheduleInWords) {
  const auto r = post("/v1/schedules/preview", R"({"schedule_type": "cron",
      "cron": "*/15 9-17 * * 1-5", "timezone": "America/New_York", "count": 2,
      "from": "2026-03-25T10:15:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["schedule_text"],
            "every weekday, every 15 minutes between 09:00 and 17:59 (America/New_York)");
  EXPECT_EQ(r.body["times"], json({"2026-03-25T09:00:00-04:00", "2026-03-25T09:15:00-04:00"}));
}

TEST_F(WordsTest, BadBodiesAre400NamingTheField) {
  struct Case {
    std::string body, field;
  };
  for (const auto& c : std::vector<Case>{
           {R"({})", "text"},
           {R"({"text": 5})", "text"},
           {R"({"text": ""})", "text"},
           {R"({"text": "every day at 9", "timezone": "Mars/Base"})", "timezone"},
           {R"({"text": "every day at 9", "timezone": 1})", "timezone"},
           {R"({"text": "every day at 9", "timezone": "Etc/GMT+14"})", "timezone"},
           {R"({"text": "every day at 9", "now": "yesterday"})", "now"},
           {R"({"text": "every day at 9", "zone": "UTC"})", "zone"},
           {"[1]", "body"},
       }) {
    SCOPED_TRACE(c.body);
    const auto r = post("/v1/schedules/parse", c.body);
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
  }
  const auto long_text = post("/v1/schedules/parse", json{{"text", std::string(1001, 'a')}}.dump());
  EXPECT_EQ(long_text.status, 400);
  EXPECT_EQ(long_text.error_field(), "text");
}

TEST_F(WordsTest, TheZoneTheTextNamesWinsOverTheBodysZone) {
  const auto r = parse("every day at 9 in Asia/Tokyo", "Europe/Berlin");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["schedule"]["timezone"], "Asia/Tokyo");
  // A zone the database does not know is the text's word when the text named it ...
  const auto text_zone = parse("every day at 9 in Mars/Base", "Europe/Berlin");
  EXPECT_EQ(text_zone.status, 422);
  // (a POSIX offset after a slash too, which PostgreSQL would read as 99 hours west)
  for (const char* text : {"tomorrow at 9 in Etc/GMT+99", "every day at 09:00 (ETC/GMT+99)"}) {
    const auto posix = parse(text, "Europe/Berlin");
    EXPECT_EQ(posix.status, 422) << text << ": " << posix.body.dump();
  }
  // ... and the body's field when the body did.
  const auto body_zone = parse("every day at 9", "Mars/Base");
  EXPECT_EQ(body_zone.status, 400);
  EXPECT_EQ(body_zone.error_field(), "timezone");
}

// Every zone a create takes reads back from the sentence, which names it in parentheses; loose in
// the text, an abbreviation stays refused, and in parentheses one that is no zone of the tz
// database is refused with the same reason.
TEST_F(WordsTest, EveryZoneACreateTakesReadsBackFromItsSentence) {
  for (const std::string zone : {"EST5EDT", "Japan", "GB", "Etc/GMT+5", "UTC"}) {
    SCOPED_TRACE(zone);
    const auto made = post("/v1/reminders", json{{"entity_type", "user"},
                                                 {"entity_id", "z-" + zone},
                                                 {"event_type", "e"},
                                                 {"channel", "log"},
                                                 {"schedule_type", "cron"},
                                                 {"cron", "0 9 * * *"},
                                                 {"timezone", zone}}
                                                .dump());
    ASSERT_EQ(made.status, 201) << made.body.dump();
    EXPECT_EQ(made.body["schedule_text"], "every day at 09:00 (" + zone + ")");
    const auto back = parse(made.body["schedule_text"], "Europe/Berlin");
    ASSERT_EQ(back.status, 200) << back.body.dump();
    EXPECT_EQ(back.body["schedule"]["timezone"], zone);
  }
  for (const std::string text : {"every day at 9 (CEST)", "every day at 9 EST"}) {
    const auto refused = parse(text);
    EXPECT_EQ(refused.status, 422) << text;
    EXPECT_NE(refused.body.dump().find("does not say which daylight-saving rules"),
              std::string::npos)
        << refused.body.dump();
  }
  // Spelled as the tz database does, whatever the case it was typed in.
  const auto lower = post("/v1/reminders", R"({"entity_type": "user", "entity_id": "lower",
      "event_type": "e", "channel": "log", "schedule_type": "cron", "cron": "0 9 * * *",
      "timezone": "europe/BERLIN"})");
  EXPECT_EQ(lower.body["timezone"], "Europe/Berlin") << lower.body.dump();
  EXPECT_EQ(parse("every day at 9 in america/new_york").body["schedule"]["timezone"],
            "America/New_York");
  const auto server_zone = parse("every day at 9 (localtime)");
  EXPECT_EQ(server_zone.status, 422) << server_zone.body.dump();
  EXPECT_EQ(server_zone.body["error"]["unparsed"], json({"localtime"}));
  // The tz database's CET has summer time, but PostgreSQL applies the name as an abbreviation
  // (UTC+01:00 all year): refused in parentheses too, as in a create's timezone.
  const auto cet = parse("every day at 9 (CET)");
  EXPECT_EQ(cet.status, 422) << cet.body.dump();
  EXPECT_NE(cet.body.dump().find("does not say which daylight-saving rules apply"),
            std::string::npos)
      << cet.body.dump();
}

// "for 1 minute" ends a minute after the parse's now, and the schedule starts at that now: a
// create made from it fires every time the parse listed (starting at its own now, a moment
// later, it lost the last one).
TEST_F(WordsTest, AScheduleForAWhileStartsWhereItsEndWasCounted) {
  const auto r = parse("every 20 seconds for 1 minute", "UTC", std::nullopt);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  ASSERT_EQ(r.body["times"].size(), 4u) << r.body.dump();
  EXPECT_EQ(r.body["schedule"]["run_at"], r.body["times"][0]);
  json create = r.body["schedule"];
  create.update(
      json{{"entity_type", "user"}, {"entity_id", "for"}, {"event_type", "e"}, {"channel", "log"}});
  const auto made = post("/v1/reminders", create.dump());
  ASSERT_EQ(made.status, 201) << made.body.dump();
  // Its first fire is the first time listed, and the last time listed is its end (an end
  // takes a fire at it), so it fires all four.
  EXPECT_TRUE(same_instant(made.body["next_run_at"], r.body["times"][0])) << made.body.dump();
  EXPECT_TRUE(same_instant(made.body["ends_at"], r.body["times"][3])) << made.body.dump();
}

TEST_F(WordsTest, WithoutNowTheDatabasesClockIsUsed) {
  const auto before = value<double>("SELECT extract(epoch FROM now())");
  const auto r = parse("in 10 minutes", "UTC", std::nullopt);
  const auto after = value<double>("SELECT extract(epoch FROM now())");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  const auto at = value<double>("SELECT extract(epoch FROM $1::timestamptz)",
                                r.body["schedule"]["run_at"].get<std::string>());
  // To the second: "in 10 minutes" means no microseconds.
  EXPECT_GE(at, std::floor(before) + 600);
  EXPECT_LE(at, after + 600);
  EXPECT_EQ(at, std::floor(at)) << r.body["schedule"]["run_at"];
  EXPECT_EQ(r.body["text"].get<std::string>().find('.'), std::string::npos) << r.body["text"];
}

TEST_F(WordsTest, TheTimesAreTheFiresThatWillHappen) {
  auto r = parse("every day at 9, 3 times");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"].size(), 3u) << "at most 3 fires";
  r = parse("every hour until 2026-03-25 at 13:30");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json({"2026-03-25T11:15:00+01:00", "2026-03-25T12:15:00+01:00",
                                   "2026-03-25T13:15:00+01:00"}))
      << "none after the end";
}

// "every week starting <date> at 9" in New York keeps 09:00 across the change of 14 March 2027
// (a fixed 604,800 s would fire at 10:00 EDT): the cron schedule of the start's weekday, from the
// start. Its times are written in the zone, an interval's too, so a shift would show.
// Berlin's 02:00-03:00 happens twice on 2026-10-25 (CEST, then CET). A one-off time in it is its
// first instant while that is ahead, else its second while that is (README rule 6).
TEST_F(WordsTest, ATimeSaidInTheSecondPassOfARepeatedHourIsTheOneAhead) {
  struct Case {
    const char* text;
    const char* now;
    const char* run_at;  // nullptr: refused as in the past
  };
  const Case cases[] = {
      {"today at 2:30", "2026-10-25T02:15:00+02:00", "2026-10-25T02:30:00+02:00"},
      {"today at 2:30", "2026-10-25T02:15:00+01:00", "2026-10-25T02:30:00+01:00"},
      {"at 2:30", "2026-10-25T02:15:00+01:00", "2026-10-25T02:30:00+01:00"},
      {"sunday at 2:30", "2026-10-25T02:15:00+01:00", "2026-10-25T02:30:00+01:00"},
      {"at 2:30", "2026-10-25T02:45:00+01:00", "2026-10-26T02:30:00+01:00"},
      {"today at 2:30", "2026-10-25T02:45:00+01:00", nullptr},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.text) + " at " + c.now);
    const auto r = parse(c.text, "Europe/Berlin", std::string(c.now));
    if (c.run_at == nullptr) {
      EXPECT_EQ(r.status, 422) << r.body.dump();
      continue;
    }
    ASSERT_EQ(r.status, 200) << r.body.dump();
    EXPECT_EQ(r.body["schedule"]["run_at"], c.run_at);
  }
}

TEST_F(WordsTest, EveryDayOrWeekFromAStartAtATimeKeepsThatWallTimeAcrossDaylightSaving) {
  auto r = parse("every week starting 2027-03-10 at 9:00 in New York", "UTC",
                 std::string("2026-12-05T01:45:00Z"));
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["schedule"],
            json::parse(R"({"cron":"0 9 * * 3","run_at":"2027-03-10T09:00:00-05:00",
      "schedule_type":"cron","timezone":"America/New_York"})"));
  EXPECT_EQ(r.body["times"], json({"2027-03-10T09:00:00-05:00", "2027-03-17T09:00:00-04:00",
                                   "2027-03-24T09:00:00-04:00", "2027-03-31T09:00:00-04:00",
                                   "2027-04-07T09:00:00-04:00"}));
  EXPECT_EQ(r.body["text"],
            "every wednesday at 09:00 (America/New_York), starting 2027-03-10 at 09:00");
  r = parse("every day starting 2027-03-13 at 2:30 in New York", "UTC",
            std::string("2026-12-05T01:45:00Z"));
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["schedule"]["cron"], "30 2 * * *");
  // 14 March has no 02:30: the end of the gap, then 02:30 again.
  EXPECT_EQ(r.body["times"], json({"2027-03-13T02:30:00-05:00", "2027-03-14T03:00:00-04:00",
                                   "2027-03-15T02:30:00-04:00", "2027-03-16T02:30:00-04:00",
                                   "2027-03-17T02:30:00-04:00"}));
  // A fixed interval (a create's own) is said in hours, and reads back as that interval, its
  // shift across the change visible in the zone's offsets.
  const auto fixed = value<std::string>(
      "SELECT nudge.describe_schedule('recurring', '2027-03-10T14:00Z', 604800, "
      "p_timezone => 'America/New_York')");
  EXPECT_EQ(fixed, "every 168 hours, starting 2027-03-10 at 09:00 (America/New_York)");
  r = parse(fixed, "UTC", std::string("2026-12-05T01:45:00Z"));
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["schedule"]["interval_seconds"], 604800);
  EXPECT_EQ(r.body["times"][1], "2027-03-17T10:00:00-04:00");
}

TEST_F(WordsTest, EveryCityOfTheListNamesAZoneTheDatabaseKnows) {
  for (const auto& [city, zone] : api::words::cities()) {
    SCOPED_TRACE(city);
    const auto r = parse("every day at 9 in " + city);
    ASSERT_EQ(r.status, 200) << r.body.dump();
    EXPECT_EQ(r.body["schedule"]["timezone"], zone);
  }
}

TEST_F(WordsTest, AFlagThatReadsAsSomethingElseIsQuotedByTheSentenceAndReadBack) {
  std::vector<std::string> keys = api::words::reserved_words();
  for (const std::string odd :
       {"has space", R"(quote"d)", R"(back\slash)", "123abc", "2026-12-31", "ünïcode",
        "Europe/Berlin", "feedback_submitted", "a:b-c.d", "_x", "-dash"})
    keys.push_back(odd);
  for (const auto& key : keys) {
    SCOPED_TRACE(key);
    const auto text = value<std::string>(
        "SELECT nudge.describe_schedule('recurring', p_interval_seconds => 60, "
        "p_stop_condition_type => 'db_check', p_stop_condition_value => $1)",
        key);
    const auto r = parse(text);
    ASSERT_EQ(r.status, 200) << text << ": " << r.body.dump();
    EXPECT_EQ(r.body["schedule"]["stop_condition_value"], key) << text;
  }
}

// --- the property ------------------------------------------------------------------------------

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(int percent) { return pick(1, 100) <= percent; }
  template <typename T>
  const T& one_of(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(pick(0, static_cast<int>(v.size()) - 1))];
  }

  // One field of a cron expression over lo..hi: *, */n, a value, a list, a range, a stepped range.
  std::string field(int lo, int hi, const std::vector<int>& steps) {
    switch (pick(0, 6)) {
      case 0:
        return "*";
      case 1:
        return "*/" + std::to_string(one_of(steps));
      case 2:
        return std::to_string(pick(lo, hi));
      case 3: {
        std::set<int> values;
        for (int i = pick(2, 4); i > 0; --i) values.insert(pick(lo, hi));
        std::string out;
        for (int v : values) out += (out.empty() ? "" : ",") + std::to_string(v);
        return out;
      }
      case 4: {
        const int a = pick(lo, hi);
        return std::to_string(a) + "-" + std::to_string(pick(a, hi));
      }
      case 5: {
        const int a = pick(lo, hi);
        return std::to_string(a) + "-" + std::to_string(pick(a, hi)) + "/" +
               std::to_string(one_of(steps));
      }
      default:
        return std::to_string(pick(lo, hi));
    }
  }

  std::string cron() {
    const std::string minute =
        chance(40) ? std::to_string(pick(0, 59)) : field(0, 59, {2, 3, 5, 7, 10, 15, 20, 30});
    const std::string hour =
        chance(40) ? std::to_string(pick(0, 23)) : field(0, 23, {2, 3, 4, 5, 6, 8, 12});
    std::string dom = "*", dow = "*", month = "*";
    if (chance(35))
      dom = chance(30) ? one_of<std::string>({"L", "1,L", "15,L"}) : field(1, 31, {2, 7});
    if (chance(35))
      dow = chance(30) ? one_of<std::string>({"1-5", "0,6", "7"}) : field(0, 6, {2, 3});
    if (chance(25)) month = field(1, 12, {2, 3, 6});
    return minute + " " + hour + " " + dom + " " + month + " " + dow;
  }

 private:
  std::mt19937_64 rng_;
};

TEST_F(WordsTest, RandomSchedulesDescribedInWordsParseBackToTheSameSchedule) {
  const std::uint64_t run_seed = nudge::test::test_seed();
  std::printf(
      "RandomSchedulesDescribedInWordsParseBackToTheSameSchedule: seed %llu "
      "(NUDGE_TEST_SEED=%llu replays it)\n",
      static_cast<unsigned long long>(run_seed), static_cast<unsigned long long>(run_seed));
  Generator g(run_seed);
  const std::vector<std::string> zones = {"UTC", "Europe/Berlin", "America/New_York",
                                          "Australia/Lord_Howe", "Asia/Kolkata"};
  std::vector<std::string> flags = {"feedback_submitted", "done",       "form.sent", "a:b-c.d",
                                    "has space",          R"(quote"d)", "123abc",    "Feedback"};
  for (const auto& w : api::words::reserved_words()) flags.push_back(w);
  const double now =
      value<double>("SELECT extract(epoch FROM $1::timestamptz)", std::string(cases::kNow));
  constexpr double kDay = 86400;
  int crons = 0, trials = 0;
  for (; trials < 300 && !HasFailure(); ++trials) {
    const std::string zone = g.one_of(zones);
    const int kind = g.pick(0, 9);
    const std::string type = kind < 3 ? "one_time" : kind < 6 ? "recurring" : "cron";
    std::optional<double> run_at, ends_at;
    std::optional<int> interval, max_fires;
    std::optional<std::string> cron, flag;
    if (type == "one_time") {
      // Sometimes inside Berlin's repeated hour of 2026-10-25, in either pass.
      run_at = g.chance(15) ? 1792890000.0 + g.pick(0, 7199)
                            : now + g.pick(60, 400 * 86400) + (g.chance(20) ? 0.25 : 0);
    } else {
      if (type == "recurring") {
        interval = g.one_of<int>({1, 45, 60, 90, 3600, 5400, 86400, 172800, 604800, 1209600,
                                  31622400, g.pick(1, 31622400)});
      } else {
        do {
          cron = g.cron();
        } while (!fires(*cron));
        ++crons;
      }
      if (g.chance(30)) run_at = now + g.pick(1, 90) * kDay + (g.chance(50) ? g.pick(0, 86399) : 0);
      if (g.chance(30)) ends_at = now + (cron ? 3000 : 400) * kDay + g.pick(0, 100 * 86400);
      if (g.chance(30)) max_fires = g.chance(20) ? 1 : g.pick(2, 1000);
    }
    if (g.chance(30)) flag = g.one_of(flags);

    const std::string text = value<std::string>(
        "SELECT nudge.describe_schedule($1, to_timestamp($2), $3, $4, $5, "
        "CASE WHEN $6::text IS NOT NULL THEN 'db_check' END, $6, $7, to_timestamp($8))",
        type, run_at, interval, cron, zone, flag, max_fires, ends_at);
    SCOPED_TRACE("seed " + std::to_string(run_seed) + ", trial " + std::to_string(trials) + ": " +
                 type + " " + cron.value_or("") + " in " + zone + ": \"" + text + "\"");
    const auto r = parse(text, "UTC");
    ASSERT_EQ(r.status, 200) << r.body.dump();
    const json& s = r.body["schedule"];
    EXPECT_EQ(s["schedule_type"], type);
    EXPECT_EQ(s.value("interval_seconds", json()), interval ? json(*interval) : json());
    EXPECT_EQ(s.value("stop_condition_value", json()), flag ? json(*flag) : json());
    EXPECT_EQ(s.value("max_fires", json()), max_fires ? json(*max_fires) : json());
    for (const auto& [key, want] : {std::pair{"run_at", run_at}, std::pair{"ends_at", ends_at}}) {
      ASSERT_EQ(s.contains(key), want.has_value()) << key << " in " << s.dump();
      if (want) {
        EXPECT_TRUE(value<bool>("SELECT $1::timestamptz = to_timestamp($2)",
                                s[key].get<std::string>(), *want))
            << key << " " << s[key];
      }
    }
    if (cron) {
      EXPECT_EQ(s["timezone"], zone);
      // The same expression, or one that always fires with it ("0-6" in the day of the week
      // beside a list of days of the month is every day, which the sentence says).
      EXPECT_TRUE(same_cron(s["cron"], *cron) ||
                  engine_fires(s["cron"], zone, 100) == engine_fires(*cron, zone, 100))
          << s["cron"];
      const auto fires = engine_fires(*cron, zone, 20);
      EXPECT_EQ(engine_fires(s["cron"], zone, 20), fires);
      if (!run_at && !ends_at) {
        // The answer's times are the engine's first fires.
        for (std::size_t i = 0; i < r.body["times"].size(); ++i)
          EXPECT_TRUE(same_instant(r.body["times"][i], fires.at(i)))
              << r.body["times"][i] << " vs " << fires.at(i);
        EXPECT_EQ(r.body["times"].size(), std::min<std::size_t>(5, max_fires.value_or(5)));
      }
    }
  }
  EXPECT_GT(crons, trials / 5) << "the generator must keep producing cron schedules";
}

}  // namespace
}  // namespace nudge::test
