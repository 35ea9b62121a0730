// /v1/rules: create, list, read, change and delete rules over HTTP; a rule is checked when it is
// saved and a bad one is a 400 naming the field.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using Rules = ApiTest;

const std::string kRemind = R"({"type": "remind", "reminder": {"event_type": "feedback_form",
  "channel": "log", "schedule_type": "one_time", "delay_seconds": 60,
  "stop_condition_type": "db_check", "stop_condition_value": "done:{{entity_id}}"}})";

std::string rule_body(const std::string& name, const std::string& event_type,
                      const std::string& action = kRemind, const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "event_type": ")" + event_type + R"(", "action": )" +
         action + extra + "}";
}

TEST_F(Rules, ARuleIsCreatedReadAndListed) {
  const auto created = post("/v1/rules", rule_body("nag", "interview_completed", kRemind,
                                                   R"(, "when": {"data.priority": "high"})"));
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const json& r = created.body;
  EXPECT_EQ(r["name"], "nag");
  EXPECT_EQ(r["event_type"], "interview_completed");
  EXPECT_EQ(r["enabled"], true);
  EXPECT_EQ(r["when"], json::parse(R"({"data.priority": "high"})"));
  EXPECT_EQ(r["action"], json::parse(kRemind));
  const auto id = r["id"].get<long>();
  EXPECT_EQ(get("/v1/rules/" + std::to_string(id)).body, r);

  post("/v1/rules", rule_body("other", "signup"));
  post("/v1/rules", rule_body("off", "signup", kRemind, R"(, "enabled": false)"));
  const auto signup = get("/v1/rules?event_type=signup");
  ASSERT_EQ(signup.status, 200);
  ASSERT_EQ(signup.body["items"].size(), 2u);
  EXPECT_EQ(signup.body["items"][0]["name"], "off") << "newest first";
  const auto enabled = get("/v1/rules?event_type=signup&enabled=true");
  ASSERT_EQ(enabled.body["items"].size(), 1u);
  EXPECT_EQ(enabled.body["items"][0]["name"], "other");
  // Pages of one.
  const auto first = get("/v1/rules?limit=1");
  ASSERT_EQ(first.body["items"].size(), 1u);
  const auto second =
      get("/v1/rules?limit=1&cursor=" + first.body["next_cursor"].get<std::string>());
  ASSERT_EQ(second.body["items"].size(), 1u);
  EXPECT_NE(second.body["items"][0]["id"], first.body["items"][0]["id"]);
}

TEST_F(Rules, APatchChangesOnlyWhatItGives) {
  const auto id = post("/v1/rules", rule_body("nag", "e")).body["id"].get<long>();
  const std::string path = "/v1/rules/" + std::to_string(id);
  const auto off = patch(path, R"({"enabled": false, "name": "nag, off"})");
  ASSERT_EQ(off.status, 200) << off.body.dump();
  EXPECT_EQ(off.body["enabled"], false);
  EXPECT_EQ(off.body["name"], "nag, off");
  EXPECT_EQ(off.body["action"], json::parse(kRemind));
  EXPECT_EQ(patch(path, "{}").error_field(), "body");
  EXPECT_EQ(patch(path, R"({"colour": "red"})").error_field(), "colour");
  EXPECT_EQ(patch(path, R"({"action": {"type": "nope"}})").error_field(), "action.type");
  EXPECT_EQ(get(path).body["enabled"], false) << "a refused change changes nothing";
  // Conditions can be taken away; what every rule has cannot.
  ASSERT_EQ(patch(path, R"({"when": {"data.kind": "onsite"}})").status, 200);
  const auto cleared = patch(path, R"({"when": null})");
  ASSERT_EQ(cleared.status, 200) << cleared.body.dump();
  EXPECT_EQ(cleared.body["when"], json::object());
  EXPECT_EQ(patch(path, R"({"name": null})").error_field(), "name");
}

// A rule saved is tried on the newest event of its type: one that reads data that event lacks
// is saved with a warning (a PATCH to {{data.nothere}} refused every later event unwarned:
// explore31b); one it could run, or with no such event, answers none.
TEST_F(Rules, ARuleTheNewestEventOfItsTypeCouldNotHaveRunIsSavedWithAWarning) {
  const auto reads = [](const std::string& path) {
    return R"({"type": "remind", "reminder": {"event_type": "nag", "channel": "log",
      "schedule_type": "one_time", "payload": {"x": "{{)" +
           path + R"(}}"}}})";
  };
  const auto fresh = post("/v1/rules", rule_body("first", "warned", reads("data.candidate")));
  ASSERT_EQ(fresh.status, 201) << fresh.body.dump();
  EXPECT_FALSE(fresh.body.contains("warning")) << "no event of its type yet";
  ASSERT_EQ(post("/v1/events", R"({"event_type": "warned", "entity_type": "i", "entity_id": "1",
                                  "data": {"candidate": "C-7"}})")
                .status,
            201);
  const auto event_id = get("/v1/events?event_type=warned").body["items"][0]["event"]["id"];
  const auto fine = post("/v1/rules", rule_body("fine", "warned", reads("data.candidate")));
  EXPECT_FALSE(fine.body.contains("warning")) << fine.body.dump();
  const auto id = fresh.body["id"].get<long>();
  const auto typo =
      patch("/v1/rules/" + std::to_string(id), R"({"action": )" + reads("data.nothere") + "}");
  ASSERT_EQ(typo.status, 200) << typo.body.dump();
  EXPECT_EQ(typo.body["warning"],
            "the newest warned event (#" + event_id.dump() + ") could not have run it: rule " +
                std::to_string(id) +
                ": action.reminder.payload.x: the event has no data.nothere for {{data.nothere}}");
  EXPECT_FALSE(get("/v1/rules/" + std::to_string(id)).body.contains("warning"));
  // The event of a rule's type is refused by it, as warned.
  EXPECT_EQ(post("/v1/events", R"({"event_type": "warned", "entity_type": "i", "entity_id": "2"})")
                .status,
            422);
}

// A password in a template's target is the worker's to send, answered as *** like a reminder's
// (explore29a #4: the rule answered it whole on every route).
TEST_F(Rules, ATemplatesTargetIsAnsweredWithoutItsPassword) {
  const auto created = post("/v1/rules", rule_body("hook", "e", R"({"type": "remind", "reminder":
    {"event_type": "f", "channel": "webhook", "schedule_type": "one_time",
     "target": "https://ru:s3cret-pw@hooks.example.com/in"}})"));
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const std::string shown = "https://ru:***@hooks.example.com/in";
  EXPECT_EQ(created.body["action"]["reminder"]["target"], shown);
  const std::string path = "/v1/rules/" + std::to_string(created.body["id"].get<long>());
  EXPECT_EQ(get(path).body["action"]["reminder"]["target"], shown);
  EXPECT_EQ(get("/v1/rules").body.dump().find("s3cret-pw"), std::string::npos);
  EXPECT_EQ(patch(path, R"({"enabled": false})").body.dump().find("s3cret-pw"), std::string::npos);
  EXPECT_EQ(value<std::string>("SELECT action #>> '{reminder,target}' FROM nudge.rules"),
            "https://ru:s3cret-pw@hooks.example.com/in")
      << "kept, for the reminders it makes";
}

TEST_F(Rules, DeletingARuleAnswers204ThenItIsGone) {
  const auto id = post("/v1/rules", rule_body("nag", "e")).body["id"].get<long>();
  const std::string path = "/v1/rules/" + std::to_string(id);
  EXPECT_EQ(send("DELETE", path).status, 204);
  EXPECT_EQ(get(path).status, 404);
  EXPECT_EQ(send("DELETE", path).status, 404);
  EXPECT_EQ(patch(path, R"({"enabled": true})").status, 404);
  const Reply not_an_id = get("/v1/rules/abc");
  EXPECT_EQ(not_an_id.status, 400);
  EXPECT_EQ(not_an_id.error_field(), "id");
}

TEST_F(Rules, ABadRuleIsA400NamingTheField) {
  const std::string remind = R"({"type": "remind", "reminder": {"event_type": "f",
      "channel": "webhook", "schedule_type": "one_time")";
  const struct {
    std::string body;
    std::string field;
  } cases[] = {
      {R"({"event_type": "e", "action": {}})", "name"},
      {R"({"name": "n", "action": {}})", "event_type"},
      {R"({"name": "n", "event_type": "e"})", "action"},
      {R"({"name": "n", "event_type": "e", "action": [], "x": 1})", "action"},
      {R"({"name": "n", "event_type": "e", "action": {}, "colour": 1})", "colour"},
      {R"({"name": "n", "event_type": "e", "action": {}, "enabled": "yes"})", "enabled"},
      {rule_body("n", "e", remind + R"(, "target": "ftp://x"}})"), "action.reminder.target"},
      {rule_body("n", "e", remind + R"(, "target": "https://x/{{who}}"}})"),
       "action.reminder.target"},
      {rule_body("n", "e",
                 remind + R"(, "target": "https://x", "run_at": "{{data.d}}T09:00:00Z"}})"),
       "action.reminder.run_at"},
      {rule_body("n", "e", kRemind, R"(, "when": {"nope": 1})"), "when.nope"},
      // Nudge emits no such event, and nobody can post one: the rule could never run.
      {rule_body("n", "nudge.reminder_completd", kRemind), "event_type"},
      {rule_body("n", "e", R"({"type": "set_flag", "flag": {"key": "k", "value": "yes"}})"),
       "action.flag.value"},
      // last: its message is read below
      {rule_body("n", "e", remind + R"(, "target": "https://x", "delay_seconds": 99999999999}})"),
       "action.reminder.delay_seconds"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    const auto r = post("/v1/rules", c.body);
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
  }
  const auto too_long = post("/v1/rules", cases[std::size(cases) - 1].body);
  EXPECT_NE(too_long.body["error"]["message"].get<std::string>().find("to 2147483647"),
            std::string::npos)
      << "a whole number out of range says the range: " << too_long.body.dump();
  EXPECT_EQ(get("/v1/rules").body["items"].size(), 0u);
}

// The codes of a create's own checks (api/input.cpp), where the database checks the template.
TEST_F(Rules, AMissingOrUnknownFieldOfAnActionIsCodedAsInACreate) {
  const struct {
    std::string action;
    std::string code;
    std::string field;
  } cases[] = {
      {R"({"type": "remind", "reminder": {"event_type": "f", "channel": "log",
          "schedule_type": "one_time", "colour": 1}})",
       "unknown_field", "action.reminder.colour"},
      {R"({"type": "remind", "reminder": {"event_type": "f", "schedule_type": "one_time"}})",
       "missing_field", "action.reminder.channel"},
      {R"({"type": "remind", "reminder": {"event_type": "f", "channel": "log",
          "schedule_type": "recurring"}})",
       "missing_field", "action.reminder.interval_seconds"},
      {R"({"type": "cancel", "cancel": {}})", "missing_field", "action.cancel.event_type"},
      {R"({"type": "remind", "reminder": {"event_type": "f", "channel": "log",
          "schedule_type": "recurring", "interval_seconds": 0}})",
       "invalid_value", "action.reminder.interval_seconds"},
      // A value of another JSON type, as a create answers it (explore32a F8: "is required").
      {R"({"type": "cancel", "cancel": {"event_type": 5}})", "invalid_type",
       "action.cancel.event_type"},
      {R"({"type": "remind", "reminder": {"event_type": "f", "channel": "log",
          "schedule_type": "recurring", "interval_seconds": "5"}})",
       "invalid_type", "action.reminder.interval_seconds"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.action);
    const auto r = post("/v1/rules", rule_body("n", "e", c.action));
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.body["error"]["code"], c.code) << r.body.dump();
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
  }
  const auto no_interval = post("/v1/rules", rule_body("n", "e", cases[2].action));
  EXPECT_NE(
      no_interval.body["error"]["message"].get<std::string>().find("is required for recurring"),
      std::string::npos)
      << no_interval.body.dump();
  EXPECT_EQ(get("/v1/rules").body["items"].size(), 0u);
}

// Nudge's own events hold known data: a rule reading what they never hold would fail at each
// of them (its escalation silently missing), so it is refused when saved.
TEST_F(Rules, ARuleOnNudgesOwnEventsReadsOnlyWhatThoseEventsHold) {
  const auto nag = [](const std::string& payload) {
    return R"({"type": "remind", "reminder": {"event_type": "escalation", "channel": "log",
        "schedule_type": "one_time", "payload": )" +
           payload + "}}";
  };
  const struct {
    std::string event_type;
    std::string action;
    std::string when;
    std::string field;
  } refused[] = {
      {"nudge.reminder_failed", nag(R"({"why": "{{data.reason}}"})"), "",
       "action.reminder.payload.why"},
      {"nudge.reminder_completed", kRemind, R"(, "when": {"data.last_error": "x"})",
       "when.data.last_error"},
      {"nudge.reminder_completed", nag(R"({"c": "{{ data.reminder.colour }}"})"), "",
       "action.reminder.payload.c"},
      {"nudge.reminder_completed",
       nag(R"({"l": ["{{data.reminder.entity_id}}", "{{data.reason.x}}"]})"), "",
       "action.reminder.payload.l[1]"},
      {"nudge.reminder_failed",
       R"({"type": "set_flag", "flag": {"key": "k:{{data.reminder.id.x}}", "value": true}})", "",
       "action.flag.key"},
  };
  for (const auto& c : refused) {
    SCOPED_TRACE(c.action + c.when);
    const auto r = post("/v1/rules", rule_body("n", c.event_type, c.action, c.when));
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
  }
  EXPECT_EQ(post("/v1/rules", rule_body("n", refused[0].event_type, refused[0].action))
                .body["error"]["message"],
            "action.reminder.payload.why: nudge.reminder_failed events have no data.reason: their "
            "data holds reminder (the reminder's JSON, as GET /v1/reminders/{id} answers it) and "
            "last_error");
  EXPECT_EQ(get("/v1/rules").body["items"].size(), 0u);
  // What they hold, the reminder's own payload at any depth, and the same paths on other events.
  const auto completed = post(
      "/v1/rules",
      rule_body("c", "nudge.reminder_completed",
                nag(R"({"r": "{{data.reason}}", "m": "{{data.reminder.payload.manager.id}}",
                       "e": "{{data.reminder.entity_id}}", "whole": "{{data.reminder}}"})"),
                R"(, "when": {"data.reason": "max_fires", "data.reminder.event_type": "nag"})"));
  EXPECT_EQ(completed.status, 201) << completed.body.dump();
  const auto failed = post(
      "/v1/rules", rule_body("f", "nudge.reminder_failed", nag(R"({"e": "{{data.last_error}}"})")));
  EXPECT_EQ(failed.status, 201) << failed.body.dump();
  const auto other = post("/v1/rules", rule_body("o", "interview_completed", refused[0].action));
  EXPECT_EQ(other.status, 201) << other.body.dump();
}

TEST_F(Rules, TheTwentyFirstEnabledRuleOfAnEventTypeIsA400NamingTheEventType) {
  for (int i = 1; i <= 20; ++i) post("/v1/rules", rule_body("nag" + std::to_string(i), "e"));
  const auto refused = post("/v1/rules", rule_body("nag21", "e"));
  EXPECT_EQ(refused.status, 400) << refused.body.dump();
  EXPECT_EQ(refused.error_field(), "event_type") << refused.body.dump();
  const auto off = post("/v1/rules", rule_body("nag21", "e", kRemind, R"(, "enabled": false)"));
  EXPECT_EQ(off.status, 201) << off.body.dump();
  const auto enable =
      patch("/v1/rules/" + std::to_string(off.body["id"].get<long>()), R"({"enabled": true})");
  EXPECT_EQ(enable.status, 400) << enable.body.dump();
  EXPECT_EQ(enable.error_field(), "event_type") << enable.body.dump();
}

}  // namespace
}  // namespace nudge::test
