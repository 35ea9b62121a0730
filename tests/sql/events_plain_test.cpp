// The fast paths of events (migration 0019): nudge.remind_plainly creates exactly the reminder the
// exact path (nudge.reminder_item, then nudge.create_reminder_from_item) would, and writes nothing
// for anything out of the ordinary, which it leaves to the exact path; a batch whose remind
// template has no payload runs set-wise and answers as one event at a time would.

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using nlohmann::json;

// The event every case renders its template for (id 42, occurred 2026-06-01 08:00 UTC).
const std::string kEvent =
    "ROW(42, 'interview_completed', 'interviewer', 'INT_1', $2::jsonb, NULL, "
    "'2026-06-01T08:00:00Z'::timestamptz, now(), NULL, 0, '[]'::jsonb, NULL)::nudge.events";
const std::string kData = R"({"email": "i1@example.com", "candidate": "C \"7\"", "n": 3,
                              "url": "https://hooks.example.com/in", "manager_id": "MGR_1",
                              "braced_url": "https://hooks.example.com/{{x}}"})";
// A reminder's row as JSON, without what differs from one insert to the next.
const std::string kComparable = " - ARRAY['id', 'created_at', 'updated_at']";

class EventsPlainTest : public LifecycleTest {
 protected:
  // The reminder `reminder_expression` makes of `remind_template` for the event (null when it
  // makes none), and the number of reminders after it, in a transaction that is rolled back; as
  // a rule runs, with the rule and the event named in the settings.
  json made_by(const std::string& reminder_expression, const std::string& remind_template) {
    pqxx::work tx(conn_);
    tx.exec(
        "SELECT set_config('nudge.rule_id', '7', true), set_config('nudge.event_id', '42', true)");
    const pqxx::row row = tx.exec_params1(
        "SELECT (to_jsonb(r)" + kComparable + ")::text FROM " + reminder_expression + " r",
        remind_template, kData);
    json out = json::parse(row[0].as<std::string>());
    if (out["entity_type"].is_null()) out = json::object();
    out["rows_now"] = tx.exec1("SELECT count(*) FROM nudge.reminders")[0].as<long>();
    tx.abort();
    return out;
  }
  json plain(const std::string& remind_template) {
    return made_by("nudge.remind_plainly($1::jsonb, " + kEvent + ")", remind_template);
  }
  json exact(const std::string& remind_template) {
    return made_by(
        "(SELECT (c.reminder).* FROM nudge.create_reminder_from_item(nudge.reminder_item("
        "$1::jsonb, " +
            kEvent + ")) c)",
        remind_template);
  }
};

TEST_F(EventsPlainTest, APlainTemplateMakesTheReminderTheExactPathWouldMake) {
  const std::vector<std::string> templates = {
      // The interviewer's nag: recurring, first fire after the delay, typed and text placeholders.
      R"({"event_type": "feedback_form", "channel": "log", "schedule_type": "recurring",
          "interval_seconds": 86400, "max_fires": 3, "delay_seconds": 3600,
          "stop_condition_type": "db_check", "stop_condition_value": "feedback:{{entity_id}}",
          "payload": {"candidate": "{{data.candidate}}", "n": "{{data.n}}",
                      "note": "event {{event_id}} of {{entity_type}} {{entity_id}}"}})",
      // One email at once, to an address from the event.
      R"({"event_type": "welcome", "channel": "email", "schedule_type": "one_time",
          "target": "{{data.email}}", "max_attempts": 5})",
      // Every 90 minutes from one interval after the event, until a fixed end.
      R"({"event_type": "poll", "channel": "log", "schedule_type": "recurring",
          "interval_minutes": 90, "misfire_policy": "skip", "ends_at": "2027-01-01T00:00:00Z"})",
      // Another entity's reminder (the escalation's), to a webhook named by the event.
      R"({"entity_type": "manager", "entity_id": "{{data.manager_id}}", "event_type": "escalate",
          "channel": "webhook", "schedule_type": "one_time", "delay_seconds": 0,
          "target": "{{data.url}}", "payload": {"about": "{{entity_id}}"}})",
      // A tracker's URL with the event's values in it, each kept in its slot.
      R"({"event_type": "track", "channel": "webhook", "schedule_type": "one_time",
          "target": "https://t.example.com/c/{{data.candidate}}?by={{entity_id}}"})",
  };
  for (const auto& t : templates) {
    const json made = plain(t);
    ASSERT_TRUE(made.contains("entity_type")) << "not made plainly: " << t;
    EXPECT_EQ(made, exact(t)) << t;
    EXPECT_EQ(made["rule_id"], 7) << t;
    EXPECT_EQ(made["event_id"], 42) << t;
  }
}

TEST_F(EventsPlainTest, AnythingOutOfTheOrdinaryIsLeftToTheExactPathAndWritesNothing) {
  const std::string base = R"("event_type": "feedback_form", "channel": "email",
                              "schedule_type": "recurring", "interval_seconds": 60)";
  sql("SELECT nudge.set_flag('done:INT_1', true)");
  sql("SELECT nudge.create_reminder('interviewer', 'INT_1', 'live_one', 'log', 'recurring', "
      "p_interval_seconds => 60)");
  const long rows = count("nudge.reminders");
  struct Case {
    std::string why, remind_template;
  };
  const std::vector<Case> cases = {
      {"its stop flag is already true (the exact path creates it COMPLETED)",
       "{" + base +
           R"(, "stop_condition_type": "db_check", "stop_condition_value": "done:{{entity_id}}"})"},
      {"a live reminder has its identity (the exact path answers it, created false)",
       R"({"event_type": "live_one", "channel": "log", "schedule_type": "one_time"})"},
      {"a cron schedule", R"({"event_type": "c", "channel": "log", "schedule_type": "cron",
                              "cron": "0 9 * * *", "timezone": "Europe/Berlin"})"},
      {"a request", R"({"event_type": "r", "channel": "webhook", "schedule_type": "one_time",
                        "target": "https://example.com/h", "request": {"method": "PUT"}})"},
      {"a target the channel refuses", "{" + base + R"(, "target": "{{data.manager_id}}"})"},
      {"a value the event lacks", "{" + base + R"(, "target": "{{data.nobody}}"})"},
      {"a target that renders to one holding {{",
       R"({"event_type": "w", "channel": "webhook", "schedule_type": "one_time",
           "target": "{{data.braced_url}}"})"},
      {"a payload value the event lacks", "{" + base + R"(, "payload": {"x": "{{data.none}}"}})"},
      {"an end before the first fire", "{" + base + R"(, "ends_at": "2026-06-01T08:00:30Z"})"},
  };
  for (const auto& c : cases) {
    const json made = plain(c.remind_template);
    EXPECT_FALSE(made.contains("entity_type")) << c.why << ": " << made.dump();
    EXPECT_EQ(made["rows_now"], rows) << c.why;
  }
}

TEST_F(EventsPlainTest, ABatchWithAPayloadFreeTemplateAnswersAsOneEventAtATimeWould) {
  sql("SELECT nudge.create_rule('ping', 'interview_completed', $1::jsonb)",
      R"({"type": "remind", "reminder": {"event_type": "ping", "channel": "email",
          "schedule_type": "one_time", "delay_seconds": 60, "target": "{{data.email}}"}})");
  std::string items = "[";
  for (int i = 1; i <= 3; ++i) {
    items += (i > 1 ? "," : "") + json{{"event_type", "interview_completed"},
                                       {"entity_type", "interviewer"},
                                       {"entity_id", "INT_" + std::to_string(i)},
                                       {"occurred_at", "2026-06-01T08:00:00Z"},
                                       {"data", {{"email", "i" + std::to_string(i) + "@x.org"}}}}
                                      .dump();
  }
  items += "]";
  const auto reminders_of = [&](const std::string& function) {
    pqxx::work tx(conn_);
    const json answer = json::parse(
        tx.exec_params1("SELECT " + function + "($1::jsonb)::text", items)[0].as<std::string>());
    json made = json::array();
    for (const auto& event : answer) {
      json r = event["effects"][0]["reminder"];
      for (const char* k : {"id", "event_id", "created_at", "updated_at"}) r.erase(k);
      made.push_back(r);
    }
    tx.abort();
    return made;
  };
  const json batch = reminders_of("nudge.emit_events");
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch, reminders_of("nudge.emit_events_one_by_one"));
  EXPECT_EQ(batch[2]["payload"], json::object());
  EXPECT_EQ(batch[2]["target"], "i3@x.org");
}

}  // namespace
}  // namespace nudge::test
