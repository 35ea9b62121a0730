// /v1/events over HTTP: an event runs its rules and answers their effects; the same key answers
// the first answer, even from 16 clients at once; a rule the event cannot fill is a 422 that
// writes nothing; batches are all or nothing; events are listed newest first with their effects.

#include <chrono>
#include <thread>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

class Events : public ApiTest {
 protected:
  void SetUp() override {
    const auto r = post("/v1/rules", R"({"name": "nag", "event_type": "interview_completed",
      "action": {"type": "remind", "reminder": {"event_type": "feedback_form", "channel": "email",
      "schedule_type": "recurring", "interval_seconds": 86400, "delay_seconds": 0,
      "target": "{{data.email}}", "stop_condition_type": "db_check",
      "stop_condition_value": "feedback_submitted:{{entity_id}}",
      "payload": {"candidate": "{{data.candidate}}"}}}})");
    ASSERT_EQ(r.status, 201) << r.body.dump();
    nag_ = r.body["id"].get<long>();
  }
  static std::string interview(const std::string& entity_id, const std::string& extra = "") {
    return R"({"event_type": "interview_completed", "entity_type": "interviewer",
               "entity_id": ")" +
           entity_id + R"(", "data": {"email": "ann@example.com", "candidate": "C-7"})" + extra +
           "}";
  }
  long nag_ = 0;
};

TEST_F(Events, AnEventRunsItsRulesAndAnswersTheirEffects) {
  const auto r = post("/v1/events", interview("INT_1"));
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(r.body["created"], true);
  const json& event = r.body["event"];
  EXPECT_EQ(event["event_type"], "interview_completed");
  EXPECT_EQ(event["entity_id"], "INT_1");
  EXPECT_EQ(event["data"]["candidate"], "C-7");
  ASSERT_EQ(r.body["effects"].size(), 1u);
  const json& effect = r.body["effects"][0];
  EXPECT_EQ(effect["rule_id"], nag_);
  EXPECT_EQ(effect["type"], "remind");
  EXPECT_EQ(effect["created"], true);
  const json& reminder = effect["reminder"];
  EXPECT_EQ(reminder["target"], "ann@example.com");
  EXPECT_EQ(reminder["stop_condition_value"], "feedback_submitted:INT_1");
  EXPECT_EQ(reminder["rule_id"], nag_);
  EXPECT_EQ(reminder["event_id"], event["id"]);
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(reminder["id"].get<long>())).body, reminder);
  EXPECT_EQ(get("/v1/events/" + std::to_string(event["id"].get<long>())).body["effects"],
            r.body["effects"]);
}

TEST_F(Events, TheSameKeyAnswersTheFirstAnswerWith200) {
  const auto first = post("/v1/events", interview("INT_1", R"(, "key": "int-1-done")"));
  const auto again = post("/v1/events", interview("INT_1", R"(, "key": "int-1-done")"));
  ASSERT_EQ(first.status, 201);
  ASSERT_EQ(again.status, 200) << again.body.dump();
  EXPECT_EQ(again.body["created"], false);
  EXPECT_EQ(again.body["event"], first.body["event"]);
  EXPECT_EQ(again.body["effects"], first.body["effects"]);
  EXPECT_EQ(get("/v1/events").body["items"].size(), 1u);
}

TEST_F(Events, SixteenClientsPostingOneKeyAtOnceGetOneEvent) {
  std::vector<std::thread> clients;
  std::vector<int> statuses(16);
  std::vector<json> answers(16);
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&, i] {
      httplib::Client client("127.0.0.1", port_);
      client.set_read_timeout(30);
      // A post held behind the first while a quarter of the pool already waits for held rows
      // is a 503 with Retry-After (a loaded machine): a client posts again, as clients do.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      for (;;) {
        const auto r =
            client.Post("/v1/events", interview("INT_1", R"(, "key": "race")"), "application/json");
        statuses[i] = r ? r->status : 0;
        answers[i] = r ? json::parse(r->body, nullptr, false) : json();
        if (!r || r->status != 503 || r->get_header_value("Retry-After").empty() ||
            std::chrono::steady_clock::now() > deadline)
          break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 201), 1) << json(statuses).dump();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), 15) << json(statuses).dump();
  for (const auto& a : answers) EXPECT_EQ(a["effects"], answers[0]["effects"]);
  EXPECT_EQ(get("/v1/events").body["items"].size(), 1u);
  EXPECT_EQ(get("/v1/reminders").body["items"].size(), 1u);
}

TEST_F(Events, ARuleTheEventCannotFillIsA422ThatWritesNothing) {
  const auto r = post("/v1/events", R"({"event_type": "interview_completed",
      "entity_type": "interviewer", "entity_id": "INT_1", "data": {"candidate": "C-7"}})");
  ASSERT_EQ(r.status, 422) << r.body.dump();
  EXPECT_EQ(r.body["error"]["code"], "rule_failed");
  EXPECT_EQ(r.body["error"]["rule_id"], nag_);
  EXPECT_EQ(r.error_field(), "action.reminder.target");
  const auto bad = post("/v1/events", interview("INT_1").replace(
                                          interview("INT_1").find("ann@example.com"), 15, "ann"));
  ASSERT_EQ(bad.status, 422) << bad.body.dump();
  EXPECT_EQ(bad.error_field(), "action.reminder.target");
  EXPECT_EQ(get("/v1/events").body["items"].size(), 0u);
  EXPECT_EQ(get("/v1/reminders").body["items"].size(), 0u);
}

// A leap second is an RFC 3339 time (explore20a): recorded as the next minute's first instant,
// as PostgreSQL reads it, alone and in a batch.
TEST_F(Events, AnEventAtALeapSecondIsRecorded) {
  const auto one = post("/v1/events", R"({"event_type": "leap", "entity_type": "clock",
      "entity_id": "c1", "occurred_at": "2016-12-31T23:59:60Z"})");
  ASSERT_EQ(one.status, 201) << one.body.dump();
  EXPECT_EQ(value<std::string>("SELECT $1::timestamptz = '2017-01-01T00:00:00Z'",
                               one.body["event"]["occurred_at"].get<std::string>()),
            "t");
  const auto batch = post("/v1/events/batch", R"({"items": [{"event_type": "leap",
      "entity_type": "clock", "entity_id": "c2", "occurred_at": "2017-01-01T00:59:60+01:00"}]})");
  ASSERT_EQ(batch.status, 200) << batch.body.dump();
  EXPECT_EQ(batch.body["items"][0]["event"]["occurred_at"], "2017-01-01T00:00:00+00:00");
  const auto past_it = post("/v1/events", R"({"event_type": "leap", "entity_type": "clock",
      "entity_id": "c3", "occurred_at": "2016-12-31T23:59:60.5Z"})");
  EXPECT_EQ(past_it.status, 400) << past_it.body.dump();
  EXPECT_EQ(past_it.error_field(), "occurred_at");
}

// "9 am in each recipient's zone": a cron template's timezone from the event's data, checked as
// UTC when saved and as rendered at each event; placeholders where one event cannot choose are
// refused when saved, saying so.
TEST_F(Events, ACronTemplatesZoneMayComeFromTheEvent) {
  const auto rule = post("/v1/rules", R"({"name": "morning", "event_type": "signed_up",
      "action": {"type": "remind", "reminder": {"event_type": "welcome", "channel": "log",
      "schedule_type": "cron", "cron": "0 9 * * *", "timezone": "{{data.tz}}"}}})");
  ASSERT_EQ(rule.status, 201) << rule.body.dump();
  const auto r = post("/v1/events", R"({"event_type": "signed_up", "entity_type": "user",
      "entity_id": "u1", "data": {"tz": "Asia/Tokyo"}, "occurred_at": "2030-01-01T12:00:00Z"})");
  ASSERT_EQ(r.status, 201) << r.body.dump();
  const json& reminder = r.body["effects"][0]["reminder"];
  EXPECT_EQ(reminder["timezone"], "Asia/Tokyo");
  EXPECT_EQ(value<std::string>("SELECT $1::timestamptz AT TIME ZONE 'Asia/Tokyo'",
                               reminder["next_run_at"].get<std::string>()),
            "2030-01-02 09:00:00");
  const auto bad = post("/v1/events", R"({"event_type": "signed_up", "entity_type": "user",
      "entity_id": "u2", "data": {"tz": "Mars/Olympus"}})");
  ASSERT_EQ(bad.status, 422) << bad.body.dump();
  EXPECT_EQ(bad.error_field(), "action.reminder.timezone");
  for (const std::string field : {"channel", "schedule_type", "cron"}) {
    SCOPED_TRACE(field);
    json action = {{"type", "remind"},
                   {"reminder",
                    {{"event_type", "welcome"},
                     {"channel", "log"},
                     {"schedule_type", "cron"},
                     {"cron", "0 9 * * *"}}}};
    action["reminder"][field] = "{{data.x}}";
    const auto refused =
        post("/v1/rules", json{{"name", "r"}, {"event_type", "e"}, {"action", action}}.dump());
    ASSERT_EQ(refused.status, 400) << refused.body.dump();
    EXPECT_EQ(refused.error_field(), "action.reminder." + field);
    EXPECT_NE(refused.body["error"]["message"].get<std::string>().find("cannot hold placeholders"),
              std::string::npos)
        << refused.body.dump();
  }
}

// "Stop nagging at the offer deadline": a remind template's ends_at may be the event's
// {{data.NAME}}, checked at each event as a create checks one; a written one must be RFC 3339
// with an offset, as a create's (explore26a #3: the placeholder was refused with no field, and
// "tomorrow" was saved and read in each session's zone).
TEST_F(Events, ARemindersEndMayComeFromTheEvent) {
  const auto rule = post("/v1/rules", R"({"name": "until", "event_type": "offer_made",
      "action": {"type": "remind", "reminder": {"event_type": "offer_nag", "channel": "log",
      "schedule_type": "recurring", "interval_seconds": 3600, "ends_at": "{{data.deadline}}"}}})");
  ASSERT_EQ(rule.status, 201) << rule.body.dump();
  const auto r = post("/v1/events", R"({"event_type": "offer_made", "entity_type": "candidate",
      "entity_id": "c1", "data": {"deadline": "2030-02-01T17:00:00+01:00"},
      "occurred_at": "2030-01-01T12:00:00Z"})");
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(r.body["effects"][0]["reminder"]["ends_at"], "2030-02-01T16:00:00+00:00");

  const std::string unreadable = R"({"event_type": "offer_made", "entity_type": "candidate",
      "entity_id": "c2", "data": {"deadline": "tomorrow"}})";
  const auto bad = post("/v1/events", unreadable);
  ASSERT_EQ(bad.status, 422) << bad.body.dump();
  EXPECT_EQ(bad.error_field(), "action.reminder.ends_at");
  const auto bad_batch = post("/v1/events/batch", R"({"items": [{"event_type": "offer_made",
      "entity_type": "candidate", "entity_id": "c3", "data": {"deadline": "2031-01-01T00:00:00Z"}},
      )" + unreadable + "]}");
  ASSERT_EQ(bad_batch.status, 422) << bad_batch.body.dump();
  EXPECT_EQ(bad_batch.error_field(), "items[1].action.reminder.ends_at");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1) << "nothing of either";

  for (const std::string ends_at : {"tomorrow", "2030-01-01", "2030-01-01T00:00:00",
                                    "{{data.day}}T17:00:00Z", "{{entity_id}}"}) {
    SCOPED_TRACE(ends_at);
    const json action = {{"type", "remind"},
                         {"reminder",
                          {{"event_type", "nag"},
                           {"channel", "log"},
                           {"schedule_type", "one_time"},
                           {"ends_at", ends_at}}}};
    const auto refused =
        post("/v1/rules", json{{"name", "r"}, {"event_type", "e"}, {"action", action}}.dump());
    ASSERT_EQ(refused.status, 400) << refused.body.dump();
    EXPECT_EQ(refused.error_field(), "action.reminder.ends_at");
  }
}

TEST_F(Events, ARuleWhoseDelayPutsTheFireAfterTheYear9999IsA422NamingTheDelay) {
  ASSERT_EQ(post("/v1/rules", R"({"name": "late", "event_type": "late", "action": {"type": "remind",
      "reminder": {"event_type": "late_nag", "channel": "log", "schedule_type": "one_time",
      "delay_seconds": 2147483647}}})")
                .status,
            201);
  const std::string event = R"({"event_type": "late", "entity_type": "u", "entity_id": "1",
      "occurred_at": ")";
  const auto r = post("/v1/events", event + R"(9999-12-31T00:00:00Z"})");
  ASSERT_EQ(r.status, 422) << r.body.dump();
  EXPECT_EQ(r.error_field(), "action.reminder.delay_seconds");
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("9999-12-31T23:59:59Z"),
            std::string::npos)
      << r.body.dump();
  EXPECT_EQ(get("/v1/events").body["items"].size(), 0u);
  const auto ok = post("/v1/events", event + R"(2026-01-01T00:00:00Z"})");
  ASSERT_EQ(ok.status, 201) << ok.body.dump();
  EXPECT_EQ(ok.body["effects"][0]["reminder"]["next_run_at"], "2094-01-19T03:14:07+00:00");
}

TEST_F(Events, ABadEventIsA400NamingTheField) {
  const struct {
    std::string body;
    std::string field;
  } cases[] = {
      {R"({"entity_type": "u", "entity_id": "1"})", "event_type"},
      {R"({"event_type": "e", "entity_id": "1"})", "entity_type"},
      {R"({"event_type": "e", "entity_type": "u"})", "entity_id"},
      {R"({"event_type": " \t", "entity_type": "u", "entity_id": "1"})", "event_type"},
      {R"({"event_type": "e", "entity_type": "   ", "entity_id": "1"})", "entity_type"},
      {R"({"event_type": "e", "entity_type": "u", "entity_id": "\n"})", "entity_id"},
      {R"({"event_type": "e", "entity_type": "u", "entity_id": "1", "data": [1]})", "data"},
      {R"({"event_type": "e", "entity_type": "u", "entity_id": "1", "colour": 1})", "colour"},
      {R"({"event_type": "e", "entity_type": "u", "entity_id": "1", "key": ""})", "key"},
      {R"({"event_type": "e", "entity_type": "u", "entity_id": "1", "occurred_at": "today"})",
       "occurred_at"},
      {R"({"event_type": "nudge.reminder_completed", "entity_type": "u", "entity_id": "1"})",
       "event_type"},
      {"not json", "body"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    const auto r = post("/v1/events", c.body);
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
  }
  EXPECT_EQ(get("/v1/events").body["items"].size(), 0u);
}

TEST_F(Events, ABatchIsAllOrNothingAndNamesTheItem) {
  const std::string good = interview("INT_1"), other = interview("INT_2");
  const auto bad = post("/v1/events/batch", "{\"items\": [" + good + "," + other +
                                                R"(, {"event_type": "e", "entity_type": "u"}]})");
  EXPECT_EQ(bad.status, 400) << bad.body.dump();
  EXPECT_EQ(bad.error_field(), "items[2].entity_id");
  const auto unfilled =
      post("/v1/events/batch", "{\"items\": [" + good + R"(, {"event_type": "interview_completed",
                             "entity_type": "interviewer", "entity_id": "INT_3"}]})");
  EXPECT_EQ(unfilled.status, 422) << unfilled.body.dump();
  EXPECT_EQ(unfilled.error_field(), "items[1].action.reminder.target");
  EXPECT_EQ(get("/v1/events").body["items"].size(), 0u) << "nothing of either batch";

  std::string many = "{\"items\": [";
  for (int i = 0; i < 1001; ++i) many += (i > 0 ? "," : "") + good;
  EXPECT_EQ(post("/v1/events/batch", many + "]}").error_field(), "items");
  EXPECT_EQ(post("/v1/events/batch", R"({"items": []})").error_field(), "items");
  EXPECT_EQ(post("/v1/events/batch", "{\"items\": [" + good +
                                         R"(, {"event_type": "e", "entity_type": "u",
                                         "entity_id": "  "}]})")
                .error_field(),
            "items[1].entity_id");

  const auto ok = post("/v1/events/batch", "{\"items\": [" + good + "," + other + "]}");
  ASSERT_EQ(ok.status, 200) << ok.body.dump();
  ASSERT_EQ(ok.body["items"].size(), 2u);
  EXPECT_EQ(ok.body["items"][1]["event"]["entity_id"], "INT_2");
  EXPECT_EQ(ok.body["items"][1]["effects"][0]["reminder"]["entity_id"], "INT_2");
}

TEST_F(Events, EventsAreListedNewestFirstWithTheirEffects) {
  post("/v1/events", interview("INT_1"));
  post("/v1/events", interview("INT_2"));
  post("/v1/events", R"({"event_type": "signup", "entity_type": "user", "entity_id": "u1"})");
  const auto all = get("/v1/events");
  ASSERT_EQ(all.body["items"].size(), 3u);
  EXPECT_EQ(all.body["items"][0]["event"]["event_type"], "signup");
  EXPECT_EQ(all.body["items"][0]["effects"], json::array());
  const auto two = get("/v1/events?event_type=interview_completed&entity_id=INT_2");
  ASSERT_EQ(two.body["items"].size(), 1u);
  EXPECT_EQ(two.body["items"][0]["effects"][0]["type"], "remind");
  const auto page = get("/v1/events?limit=2");
  ASSERT_EQ(page.body["items"].size(), 2u);
  const auto rest = get("/v1/events?limit=2&cursor=" + page.body["next_cursor"].get<std::string>());
  ASSERT_EQ(rest.body["items"].size(), 1u);
  EXPECT_EQ(rest.body["items"][0]["event"]["entity_id"], "INT_1");
  EXPECT_EQ(get("/v1/events/999999").status, 404);
  EXPECT_EQ(get("/v1/events?colour=red").error_field(), "colour");
}

}  // namespace
}  // namespace nudge::test
