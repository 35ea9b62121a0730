// Events and rules in SQL: an event runs the enabled rules of its type in the caller's
// transaction (remind, set_flag, cancel), once per idempotency key; a rule the event cannot be
// rendered for refuses it and writes nothing; reminders that end emit Nudge's own events, which
// is how escalation works; chains of rules stop at a depth of 8.

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using nlohmann::json;

// The interviewer example of the README (its rules; keyed here by interviewer, there by
// interview): nag every day, at most 3 times, until feedback is in.
const std::string kNagRule = R"({"type": "remind", "reminder": {
  "event_type": "feedback_form", "channel": "log", "schedule_type": "recurring",
  "interval_seconds": 86400, "max_fires": 3, "delay_seconds": 3600,
  "stop_condition_type": "db_check", "stop_condition_value": "feedback_submitted:{{entity_id}}",
  "payload": {"candidate": "{{data.candidate}}", "manager_id": "{{data.manager_id}}",
              "note": "interview {{event_id}} of {{entity_type}} {{entity_id}}"}}})";
// What an interview_completed event carries in these tests.
const std::string kInterview = R"({"candidate": "C-7", "manager_id": "MGR_1"})";
const std::string kStopRule =
    R"({"type": "set_flag", "flag": {"key": "feedback_submitted:{{entity_id}}", "value": true}})";

class EventsTest : public LifecycleTest {
 protected:
  std::int64_t rule(const std::string& name, const std::string& event_type,
                    const std::string& action, const std::string& when = "{}") {
    return value<std::int64_t>("SELECT (nudge.create_rule($1, $2, $3::jsonb, $4::jsonb)).id", name,
                               event_type, action, when);
  }
  // nudge.emit_event's answer.
  json emit(const std::string& event_type, const std::string& entity_id,
            const std::string& data = "{}", const std::optional<std::string>& key = std::nullopt,
            const std::string& entity_type = "interviewer") {
    return json::parse(
        value<std::string>("SELECT nudge.emit_event($1, $2, $3, $4::jsonb, $5)::text", event_type,
                           entity_type, entity_id, data, key));
  }
  SqlFailure emit_failure(const std::string& event_type, const std::string& entity_id,
                          const std::string& data = "{}") {
    return failure_of("SELECT nudge.emit_event($1, 'interviewer', $2, $3::jsonb)", event_type,
                      entity_id, data);
  }
  json reminder_json(std::int64_t id) {
    return json::parse(value<std::string>(
        "SELECT nudge.reminder_json(r)::text FROM nudge.reminders r WHERE id = $1", id));
  }
  // Moves a reminder's next run into the past, as time passing would.
  void make_due(std::int64_t id) {
    sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 second' WHERE id = $1", id);
  }
  // One fire of each due reminder, delivered, as a worker does it.
  int fire_due() {
    const auto fires = claim("w1");
    if (!fires.empty()) finish("w1", fires);
    return static_cast<int>(fires.size());
  }
};

TEST_F(EventsTest, ARemindRuleCreatesItsReminderFromTheTemplate) {
  const auto nag = rule("nag interviewer", "interview_completed", kNagRule);
  const json answer =
      emit("interview_completed", "INT_100", R"({"candidate": "C-7", "manager_id": "MGR_1"})");
  ASSERT_TRUE(answer["created"].get<bool>()) << answer.dump();
  ASSERT_EQ(answer["effects"].size(), 1u) << answer.dump();
  const json& effect = answer["effects"][0];
  EXPECT_EQ(effect["rule_id"], nag);
  EXPECT_EQ(effect["type"], "remind");
  EXPECT_TRUE(effect["created"].get<bool>());
  const json& r = effect["reminder"];
  const auto event_id = answer["event"]["id"].get<std::int64_t>();
  EXPECT_EQ(r["entity_type"], "interviewer");
  EXPECT_EQ(r["entity_id"], "INT_100");
  EXPECT_EQ(r["stop_condition_value"], "feedback_submitted:INT_100");
  EXPECT_EQ(r["payload"]["candidate"], "C-7");
  EXPECT_EQ(r["payload"]["manager_id"], "MGR_1");
  EXPECT_EQ(r["payload"]["note"],
            "interview " + std::to_string(event_id) + " of interviewer INT_100");
  EXPECT_EQ(r["rule_id"], nag);
  EXPECT_EQ(r["event_id"], event_id);
  EXPECT_EQ(reminder_json(r["id"].get<std::int64_t>()), r) << "the effect is the reminder's JSON";
  EXPECT_TRUE(
      value<bool>("SELECT next_run_at = (SELECT occurred_at FROM nudge.events WHERE id = "
                  "$1) + interval '1 hour' FROM nudge.reminders WHERE id = $2",
                  event_id, r["id"].get<std::int64_t>()));
}

TEST_F(EventsTest, PlaceholdersAreRenderedAsJsonSafeTextOrAsTypedValues) {
  rule("r", "e", R"({"type": "remind", "reminder": {"event_type": "x", "channel": "log",
      "schedule_type": "one_time", "stop_condition_type": "db_check",
      "stop_condition_value": "k:{{ entity_id }}:{{data.n}}",
      "payload": {"quote": "{{data.text}}", "said": "she said \"{{data.text}}\"",
                  "n": "{{data.n}}", "n_text": "n={{data.n}}", "obj": "{{data.obj}}",
                  "nothing": "{{data.nothing}}", "list": ["{{data.obj.a}}", "{{event_type}}"],
                  "nested": {"id": "{{event_id}}"}}}})");
  const json answer =
      emit("e", "u \"1\"", R"({"text": "a \"b\"\nc & d = é", "n": 5, "obj": {"a": [1]},
                               "nothing": null})");
  const json& r = answer["effects"][0]["reminder"];
  EXPECT_EQ(r["entity_id"], "u \"1\"");
  EXPECT_EQ(r["stop_condition_value"], "k:u \"1\":5") << "text fields render text";
  const json& p = r["payload"];
  EXPECT_EQ(p["quote"], "a \"b\"\nc & d = é");
  EXPECT_EQ(p["said"], "she said \"a \"b\"\nc & d = é\"");
  EXPECT_EQ(p["n"], 5) << "a payload value that is one placeholder keeps its JSON type";
  EXPECT_EQ(p["n_text"], "n=5");
  EXPECT_EQ(p["obj"], json::parse(R"({"a": [1]})"));
  EXPECT_TRUE(p.contains("nothing") && p["nothing"].is_null()) << "a null in the payload stays";
  EXPECT_EQ(p["list"], json::parse(R"([[1], "e"])"));
  EXPECT_EQ(p["nested"]["id"], answer["event"]["id"]);
}

// Data amid a webhook target's text is one URI component: it cannot move the request to another
// host, path or query (an id "../../admin" once sent a tracker's DELETE, secrets and all, to
// /admin); a target that is one placeholder alone is the whole URL the event gives.
TEST_F(EventsTest, DataInAWebhookTargetStaysInItsSlot) {
  rule("path", "due", R"({"type": "remind", "reminder": {"event_type": "path",
      "channel": "webhook", "schedule_type": "one_time",
      "target": "https://tracker.example.com/api/tickets/{{data.id}}/status?by={{entity_id}}"}})");
  rule("host", "due", R"({"type": "remind", "reminder": {"event_type": "host",
      "channel": "webhook", "schedule_type": "one_time",
      "target": "https://{{data.tenant}}.example.com/hook"}})");
  rule("whole", "due", R"({"type": "remind", "reminder": {"event_type": "whole",
      "channel": "webhook", "schedule_type": "one_time", "target": "{{data.url}}"}})");
  const json answer = emit("due", "u 1&x=2", R"({"id": "../../admin", "tenant": "a",
      "url": "https://hooks.example.com/x/y?z=1#f"})");
  ASSERT_EQ(answer["effects"].size(), 3u) << answer.dump();
  std::map<std::string, std::string> target;
  for (const auto& e : answer["effects"])
    target[e["reminder"]["event_type"]] = e["reminder"]["target"];
  EXPECT_EQ(target["path"],
            "https://tracker.example.com/api/tickets/..%2F..%2Fadmin/status?by=u%201%26x%3D2");
  EXPECT_EQ(target["host"], "https://a.example.com/hook");
  EXPECT_EQ(target["whole"], "https://hooks.example.com/x/y?z=1#f");
  // A dot segment alone is a name; a host that data would end early is no URL: the event is
  // refused, naming the target.
  const json dots =
      emit("due", "u2", R"({"id": "..", "tenant": "b", "url": "https://h.example.com/"})");
  ASSERT_EQ(dots["effects"].size(), 3u) << dots.dump();
  EXPECT_EQ(dots["effects"][0]["reminder"]["target"],
            "https://tracker.example.com/api/tickets/%2E%2E/status?by=u2");
  const SqlFailure host = emit_failure("due", "u3", R"({"id": "1", "tenant": "127.0.0.1:8081/x#",
      "url": "https://h.example.com/"})");
  EXPECT_EQ(host.sqlstate, "NU422");
  EXPECT_NE(host.message.find("action.reminder.target"), std::string::npos) << host.message;

  // A batch renders the rule set-wise, from its compiled form: the same targets.
  const json batch = json::parse(value<std::string>(
      "SELECT nudge.emit_events($1::jsonb)::text",
      std::string(R"([{"event_type": "due", "entity_type": "interviewer", "entity_id": "b1",
          "data": {"id": "../../admin", "tenant": "a", "url": "https://h.example.com/"}},
         {"event_type": "due", "entity_type": "interviewer", "entity_id": "b2",
          "data": {"id": "T-1#", "tenant": "a", "url": "https://h.example.com/"}}])")));
  std::set<std::string> batch_targets;
  for (const auto& item : batch)
    for (const auto& e : item["effects"])
      if (e["reminder"]["event_type"] == "path") batch_targets.insert(e["reminder"]["target"]);
  EXPECT_EQ(
      batch_targets,
      (std::set<std::string>{"https://tracker.example.com/api/tickets/..%2F..%2Fadmin/status?by=b1",
                             "https://tracker.example.com/api/tickets/T-1%23/status?by=b2"}))
      << batch.dump();
}

// A JSON null for an item's data is the same as leaving it out, as REST reads it, on the batch's
// set-wise path and on its item-by-item one (a key sends it there).
TEST_F(EventsTest, ABatchItemsNullDataIsNoData) {
  for (const std::string key : {"", R"(, "key": "k1")"}) {
    SCOPED_TRACE(key);
    const json batch = json::parse(value<std::string>(
        "SELECT nudge.emit_events($1::jsonb)::text",
        R"([{"event_type": "noted", "entity_type": "interviewer", "entity_id": "n)" +
            std::to_string(key.size()) + R"(", "data": null)" + key + "}]"));
    ASSERT_EQ(batch.size(), 1u) << batch.dump();
    EXPECT_EQ(batch[0]["event"]["data"], json::object()) << batch.dump();
  }
}

// A webhook URL kept whole in a secret ({{secret.NAME}} alone: Slack's URL is its credential) is
// the worker's to fill: rules keep it as written, one event at a time and in batches; a secret
// anywhere else in a template is refused when the rule is saved, naming the field.
TEST_F(EventsTest, ATargetKeptInASecretStaysForTheWorkerToFill) {
  rule("slack", "due", R"({"type": "remind", "reminder": {"event_type": "slack",
      "channel": "webhook", "schedule_type": "one_time", "target": "{{secret.slack}}",
      "payload": {"text": "{{data.text}}"}}})");
  const json answer = emit("due", "u1", R"({"text": "stand-up"})");
  ASSERT_EQ(answer["effects"].size(), 1u) << answer.dump();
  EXPECT_EQ(answer["effects"][0]["reminder"]["target"], "{{secret.slack}}");
  const json batch = json::parse(value<std::string>(
      "SELECT nudge.emit_events($1::jsonb)::text",
      std::string(R"([{"event_type": "due", "entity_type": "interviewer", "entity_id": "b1",
          "data": {"text": "a"}}])")));
  EXPECT_EQ(batch[0]["effects"][0]["reminder"]["target"], "{{secret.slack}}") << batch.dump();
  // The breaker counts it under its name, never under the URL.
  EXPECT_EQ(value<std::string>("SELECT nudge.target_host('{{secret.slack}}')"), "{{secret.slack}}");

  const auto refused = [&](const std::string& reminder) {
    return failure_of("SELECT nudge.create_rule('r', 'due', $1::jsonb, '{}'::jsonb)",
                      R"({"type": "remind", "reminder": )" + reminder + "}");
  };
  const SqlFailure amid = refused(R"({"event_type": "x", "channel": "webhook",
      "schedule_type": "one_time", "target": "https://hooks.example.com/{{secret.slack}}"})");
  EXPECT_EQ(amid.sqlstate, "22023");
  EXPECT_EQ(amid.message,
            "action.reminder.target: a secret stands for a whole target: "
            "{{secret.NAME}} alone, the URL its value");
  const SqlFailure email = refused(R"({"event_type": "x", "channel": "email",
      "schedule_type": "one_time", "target": "{{secret.slack}}"})");
  EXPECT_EQ(email.sqlstate, "22023");
  EXPECT_NE(email.message.find("action.reminder.target"), std::string::npos) << email.message;
  const SqlFailure payload = refused(R"({"event_type": "x", "channel": "webhook",
      "schedule_type": "one_time", "target": "{{secret.slack}}",
      "payload": {"token": "{{secret.slack}}"}})");
  EXPECT_EQ(payload.sqlstate, "22023");
  EXPECT_NE(payload.message.find("action.reminder.payload"), std::string::npos) << payload.message;
  const SqlFailure spaced = refused(R"({"event_type": "x", "channel": "webhook",
      "schedule_type": "one_time", "target": "{{ secret.slack }}"})");
  EXPECT_EQ(spaced.sqlstate, "22023");
  EXPECT_NE(spaced.message.find("action.reminder.target"), std::string::npos) << spaced.message;
}

// A cancel rule that waits for a reminder a flag is completing leaves it COMPLETED and the event
// stands, one at a time and in a batch: it once failed the whole event with 409 ("can no longer
// be cancelled"), and the escalation it was to stop ran in full.
TEST_F(EventsTest, ACancelThatWaitsForAReminderEndingMeanwhileLeavesItAndTheEventStands) {
  rule("cancel", "interview_cancelled",
       R"({"type": "cancel", "cancel": {"event_type": "feedback_form"}})");
  for (const std::string statement :
       {"SELECT nudge.emit_event('interview_cancelled', 'interviewer', 'u1')::text",
        "SELECT nudge.emit_events('[{\"event_type\": \"interview_cancelled\", "
        "\"entity_type\": \"interviewer\", \"entity_id\": \"u1\"}]')::text"}) {
    sql("DELETE FROM nudge.status_flags");
    sql("UPDATE nudge.reminders SET status = 'CANCELLED', completed_reason = 'cancelled', "
        "finished_at = now() WHERE status IN ('ACTIVE', 'PAUSED')");
    const std::int64_t id =
        create(
            "p_entity_type => 'interviewer', p_entity_id => 'u1', p_event_type => 'feedback_form', "
            "p_channel => 'log', p_schedule_type => 'recurring', p_interval_seconds => 60, "
            "p_stop_condition_type => 'db_check', p_stop_condition_value => 'done:u1'")
            .second;
    pqxx::connection flag_conn(db_.url());
    pqxx::work flag(flag_conn);
    flag.exec("SELECT nudge.set_flag('done:u1', true)");  // completes it, holding its row

    std::string answer, error;
    std::thread canceller([&] {
      try {
        pqxx::connection c(db_.url());
        pqxx::work tx(c);
        answer = tx.exec1(statement)[0].c_str();
        tx.commit();
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
    const auto waiting = [&] {
      return value<long>(
                 "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                 " AND datname = current_database()") > 0;
    };
    ASSERT_TRUE(wait_until(10s, waiting));
    flag.commit();
    canceller.join();
    EXPECT_EQ(error, "") << statement;
    EXPECT_NE(answer.find(R"("cancelled": [])"), std::string::npos) << answer;
    EXPECT_EQ(status(id), "COMPLETED");
    EXPECT_EQ(reason(id), "stop_condition");
  }
}

// A null put in text would read "Your feedback on null is due": refused as a missing value is.
TEST_F(EventsTest, ANullIsRefusedInsideTextAndKeptAsAWholeValue) {
  rule("r", "e", R"({"type": "remind", "reminder": {"event_type": "x", "channel": "log",
      "schedule_type": "one_time", "payload": {"said": "on {{data.who}}", "whole": "{{data.who}}"}}})");
  const SqlFailure f = emit_failure("e", "u1", R"({"who": null})");
  EXPECT_EQ(f.sqlstate, "NU422");
  EXPECT_NE(f.message.find(": the event's data.who is null, which {{data.who}} cannot put in text"),
            std::string::npos)
      << f.message;
  EXPECT_EQ(count("nudge.events"), 0);
  EXPECT_EQ(count("nudge.reminders"), 0);
  const json answer = emit("e", "u1", R"({"who": "Ann"})");
  EXPECT_EQ(answer["effects"][0]["reminder"]["payload"],
            json::parse(R"({"said": "on Ann", "whole": "Ann"})"));
}

TEST_F(EventsTest, TheFirstFireFollowsTheDelayForEachScheduleType) {
  rule("once", "e", R"({"type": "remind", "reminder": {"event_type": "once", "channel": "log",
       "schedule_type": "one_time", "delay_seconds": 90}})");
  rule("every", "e", R"({"type": "remind", "reminder": {"event_type": "every", "channel": "log",
       "schedule_type": "recurring", "interval_minutes": 10}})");
  rule("calendar", "e", R"({"type": "remind", "reminder": {"event_type": "calendar",
       "channel": "log", "schedule_type": "cron", "cron": "0 9 * * *", "timezone": "UTC",
       "delay_seconds": 3600}})");
  sql("SELECT nudge.emit_event('e', 'user', 'u1', '{}', NULL, '2026-06-01T08:30:00Z')");
  const auto first = [&](const std::string& event_type) {
    return value<std::string>(
        "SELECT to_char(next_run_at AT TIME ZONE 'UTC', 'HH24:MI:SS') "
        "FROM nudge.reminders WHERE event_type = $1",
        event_type);
  };
  EXPECT_EQ(first("once"), "08:31:30");
  EXPECT_EQ(first("every"), "08:40:00") << "recurring: one interval after the event by default";
  EXPECT_EQ(value<std::string>("SELECT to_char(next_run_at AT TIME ZONE 'UTC', 'MM-DD HH24:MI') "
                               "FROM nudge.reminders WHERE event_type = 'calendar'"),
            "06-02 09:00")
      << "cron: the first occurrence at or after 09:30";
}

TEST_F(EventsTest, ASetFlagRuleStopsTheWaitingRemindersInTheSameTransaction) {
  rule("nag", "interview_completed", kNagRule);
  rule("stop", "feedback_submitted", kStopRule);
  const auto id =
      emit("interview_completed", "INT_100", kInterview)["effects"][0]["reminder"]["id"];
  const json answer = emit("feedback_submitted", "INT_100");
  ASSERT_EQ(answer["effects"].size(), 1u);
  EXPECT_EQ(answer["effects"][0]["type"], "set_flag");
  EXPECT_EQ(answer["effects"][0]["flag"]["key"], "feedback_submitted:INT_100");
  EXPECT_EQ(answer["effects"][0]["flag"]["value"], true);
  EXPECT_EQ(reason(id.get<std::int64_t>()), "stop_condition");
  EXPECT_EQ(status(id.get<std::int64_t>()), "COMPLETED");
}

TEST_F(EventsTest, ACancelRuleCancelsOnlyTheEntitysLiveRemindersOfThatType) {
  rule("withdraw", "candidate_withdrew", R"({"type": "cancel", "cancel":
       {"event_type": "feedback_form"}})");
  const auto mine = create_one_time("C-1", kInAnHour, "");
  sql("UPDATE nudge.reminders SET entity_type = 'interviewer', event_type = 'feedback_form' "
      "WHERE id = $1",
      mine);
  const auto other_type = create(one_time_args("C-1", kInAnHour)).second;
  sql("UPDATE nudge.reminders SET entity_type = 'interviewer' WHERE id = $1", other_type);
  const auto other_entity = create(one_time_args("C-2", kInAnHour)).second;
  sql("UPDATE nudge.reminders SET entity_type = 'interviewer', event_type = 'feedback_form' "
      "WHERE id = $1",
      other_entity);
  const json answer = emit("candidate_withdrew", "C-1");
  ASSERT_EQ(answer["effects"].size(), 1u);
  EXPECT_EQ(answer["effects"][0]["cancelled"], json::array({mine}));
  EXPECT_EQ(status(mine), "CANCELLED");
  EXPECT_EQ(status(other_type), "ACTIVE");
  EXPECT_EQ(status(other_entity), "ACTIVE");
}

// A remind rule made before the cancel rule of the same reminder type: in id order alone the
// remind found the live reminder and the cancel then ended it, leaving none (explore31b F2).
TEST_F(EventsTest, CancelRulesRunFirstSoCancelThenRemindReplacesTheLiveReminder) {
  const auto remind = rule("remind", "interview_rescheduled", R"({"type": "remind", "reminder": {
      "event_type": "interview_reminder", "channel": "log", "schedule_type": "one_time",
      "delay_seconds": 3600}})");
  const auto cancel = rule("cancel", "interview_rescheduled",
                           R"({"type": "cancel", "cancel": {"event_type": "interview_reminder"}})");
  const auto first = emit("interview_rescheduled", "C-1")["effects"][1]["reminder"]["id"];
  const json answer = emit("interview_rescheduled", "C-1");
  ASSERT_EQ(answer["effects"].size(), 2u) << answer.dump();
  EXPECT_EQ(answer["effects"][0]["rule_id"], cancel);
  EXPECT_EQ(answer["effects"][0]["cancelled"], json::array({first}));
  EXPECT_EQ(answer["effects"][1]["rule_id"], remind);
  EXPECT_TRUE(answer["effects"][1]["created"].get<bool>());
  EXPECT_EQ(status(answer["effects"][1]["reminder"]["id"].get<std::int64_t>()), "ACTIVE");
  // A batch runs each rule over all its events in the same order.
  const json batch =
      json::parse(value<std::string>("SELECT nudge.emit_events($1::jsonb)::text",
                                     json::array({json{{"event_type", "interview_rescheduled"},
                                                       {"entity_type", "interviewer"},
                                                       {"entity_id", "C-1"}},
                                                  json{{"event_type", "interview_rescheduled"},
                                                       {"entity_type", "interviewer"},
                                                       {"entity_id", "C-2"}}})
                                         .dump()));
  const json& effects = batch[0]["effects"];
  ASSERT_EQ(effects.size(), 2u) << batch.dump();
  EXPECT_EQ(effects[0]["cancelled"], json::array({answer["effects"][1]["reminder"]["id"]}));
  EXPECT_TRUE(effects[1]["created"].get<bool>());
  EXPECT_EQ(batch[1]["effects"][0]["cancelled"], json::array());
  EXPECT_EQ(value<std::int64_t>("SELECT count(*) FROM nudge.reminders WHERE status = 'ACTIVE'"), 2);
  // Cancels run first within an event, not across a batch: an item cancelling another entity's
  // reminder ends the one an earlier item made, as one by one (explore31d F2).
  rule("kill other", "withdrawn", R"({"type": "cancel", "cancel": {"event_type":
       "interview_reminder", "entity_id": "{{data.other}}"}})");
  const json crossed = json::parse(value<std::string>(
      "SELECT nudge.emit_events($1::jsonb)::text",
      R"([{"event_type": "interview_rescheduled", "entity_type": "interviewer", "entity_id": "C-9"},
          {"event_type": "withdrawn", "entity_type": "interviewer", "entity_id": "C-10",
           "data": {"other": "C-9"}}])"));
  const auto made = crossed[0]["effects"][1]["reminder"]["id"].get<std::int64_t>();
  EXPECT_EQ(crossed[1]["effects"][0]["cancelled"], json::array({made})) << crossed.dump();
  EXPECT_EQ(status(made), "CANCELLED");
}

// "A day before the interview": the template's run_at from the event's data, delay_seconds
// before it; alone and in a batch; a value that is no time refuses the event (explore31b F1).
TEST_F(EventsTest, ARemindersTimeCanComeFromTheEventAndDelaySecondsPrecedeIt) {
  rule("a day before", "interview_scheduled", R"({"type": "remind", "reminder": {
      "event_type": "interview_reminder", "channel": "log", "schedule_type": "one_time",
      "run_at": "{{data.interview_at}}", "delay_seconds": -86400}})");
  rule("hourly from then", "interview_scheduled", R"({"type": "remind", "reminder": {
      "event_type": "prep", "channel": "log", "schedule_type": "recurring",
      "interval_seconds": 3600, "run_at": "{{data.interview_at}}"}})");
  const auto next_runs = [&](const std::string& entity_id) {
    return value<std::string>(
        "SELECT string_agg(to_char(next_run_at AT TIME ZONE 'UTC', 'MM-DD HH24:MI'), ',' "
        "ORDER BY event_type) FROM nudge.reminders WHERE entity_id = $1",
        entity_id);
  };
  emit("interview_scheduled", "C-1", R"({"interview_at": "2030-05-02T10:00:00+02:00"})");
  EXPECT_EQ(next_runs("C-1"), "05-01 08:00,05-02 08:00");
  sql("SELECT nudge.emit_events($1::jsonb)",
      R"([{"event_type": "interview_scheduled", "entity_type": "interviewer", "entity_id": "C-2",
           "data": {"interview_at": "2030-06-02T10:00:00Z"}},
          {"event_type": "interview_scheduled", "entity_type": "interviewer", "entity_id": "C-3",
           "data": {"interview_at": "2030-07-02T10:00:00Z"}}])");
  EXPECT_EQ(next_runs("C-2"), "06-01 10:00,06-02 10:00");
  EXPECT_EQ(next_runs("C-3"), "07-01 10:00,07-02 10:00");
  for (const std::string items : {R"([{"event_type": "interview_scheduled",
           "entity_type": "interviewer", "entity_id": "C-4", "data": {"interview_at": "soon"}}])",
                                  R"([{"event_type": "interview_scheduled",
           "entity_type": "interviewer", "entity_id": "C-4",
           "data": {"interview_at": "2031-02-30T10:00:00Z"}}])",
                                  R"([{"event_type": "interview_scheduled",
           "entity_type": "interviewer", "entity_id": "C-4", "data": {"interview_at": "2030-06-02"}}])"}) {
    const auto refused = failure_of("SELECT nudge.emit_events($1::jsonb)", items);
    EXPECT_EQ(refused.sqlstate, "NU422") << refused.message;
    EXPECT_NE(refused.message.find("action.reminder.run_at: must be an RFC 3339 time"),
              std::string::npos)
        << refused.message;
  }
  // A day before year 1 is refused in a batch as for one event (explore31d F3).
  const auto early = failure_of("SELECT nudge.emit_events($1::jsonb)",
                                R"([{"event_type": "interview_scheduled", "entity_type": "i",
                                     "entity_id": "C-4", "data": {"interview_at": "0001-01-01T09:00:00Z"}}])");
  EXPECT_NE(early.message.find("items[0]: rule "), std::string::npos) << early.message;
  EXPECT_NE(early.message.find("action.reminder.run_at: must not be before"), std::string::npos)
      << early.message;
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE entity_id = 'C-4'"), 0);
}

TEST_F(EventsTest, DisabledRulesDoNotRunAndChangingRulesLeavesTheirRemindersAlone) {
  const auto nag = rule("nag", "interview_completed", kNagRule);
  const auto id = emit("interview_completed", "INT_1", kInterview)["effects"][0]["reminder"]["id"];
  sql("SELECT nudge.update_rule($1, p_enabled => false)", nag);
  EXPECT_TRUE(emit("interview_completed", "INT_2", kInterview)["effects"].empty());
  sql("SELECT nudge.delete_rule($1)", nag);
  EXPECT_EQ(status(id.get<std::int64_t>()), "ACTIVE");
  EXPECT_EQ(count("nudge.reminders"), 1);
  EXPECT_EQ(failure_of("SELECT nudge.delete_rule($1)", nag).sqlstate, "NU404");
}

TEST_F(EventsTest, EveryConditionOfARuleMustHold) {
  rule("urgent", "ticket", R"({"type": "remind", "reminder": {"event_type": "page",
       "channel": "log", "schedule_type": "one_time"}})",
       R"({"data.priority": "high", "data.team.size": 3, "entity_type": "queue"})");
  const auto effects = [&](const std::string& entity_id, const std::string& data) {
    return emit("ticket", entity_id, data, std::nullopt, "queue")["effects"].size();
  };
  EXPECT_EQ(effects("q1", R"({"priority": "high", "team": {"size": 3}})"), 1u);
  EXPECT_EQ(effects("q2", R"({"priority": "low", "team": {"size": 3}})"), 0u);
  EXPECT_EQ(effects("q3", R"({"priority": "high", "team": {"size": "3"}})"), 0u)
      << "3 is not \"3\"";
  EXPECT_EQ(effects("q4", R"({"priority": "high"})"), 0u) << "a missing value does not hold";
}

TEST_F(EventsTest, TheSameKeyAnswersTheFirstEventAndChangesNothing) {
  rule("nag", "interview_completed", kNagRule);
  const json first = emit("interview_completed", "INT_1", kInterview, "k-1");
  const json again =
      emit("interview_completed", "INT_1", R"({"candidate": "C-8", "manager_id": "M"})", "k-1");
  EXPECT_TRUE(first["created"].get<bool>());
  EXPECT_FALSE(again["created"].get<bool>());
  EXPECT_EQ(again["event"], first["event"]);
  EXPECT_EQ(again["effects"], first["effects"]);
  EXPECT_EQ(count("nudge.events"), 1);
  EXPECT_EQ(count("nudge.reminders"), 1);
  EXPECT_TRUE(emit("interview_completed", "INT_1", kInterview)["created"].get<bool>())
      << "no key: new";
  EXPECT_EQ(count("nudge.events"), 2);
}

TEST_F(EventsTest, SixteenConcurrentEventsWithOneKeyGiveOneEventAndOneSetOfEffects) {
  rule("nag", "interview_completed", kNagRule);
  rule("count", "interview_completed",
       R"({"type": "set_flag", "flag": {"key": "seen:{{entity_id}}", "value": true}})");
  std::vector<std::thread> threads;
  std::vector<std::string> answers(16);
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      pqxx::connection conn(db_.url());
      pqxx::work tx(conn);
      answers[i] = tx.exec_params1(
                         "SELECT nudge.emit_event('interview_completed', 'interviewer', "
                         "'INT_1', $1::jsonb, 'same-key')::text",
                         kInterview)[0]
                       .as<std::string>();
      tx.commit();
    });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  for (const auto& a : answers) {
    const json j = json::parse(a);
    created += j["created"].get<bool>() ? 1 : 0;
    EXPECT_EQ(j["effects"], json::parse(answers[0])["effects"]);
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(count("nudge.events"), 1);
  EXPECT_EQ(count("nudge.reminders"), 1);
}

TEST_F(EventsTest, ARuleTheEventCannotFillRefusesTheEventAndWritesNothing) {
  const auto welcome = rule("welcome", "signup", R"({"type": "remind", "reminder": {
      "event_type": "welcome", "channel": "email", "schedule_type": "one_time",
      "target": "{{data.email}}"}})");
  rule("seen", "signup", R"({"type": "set_flag", "flag": {"key": "seen:{{entity_id}}",
       "value": true}})");
  const struct {
    const char* data;
    const char* message;
  } cases[] = {
      {"{}", ": action.reminder.target: the event has no data.email for {{data.email}}"},
      {R"({"email": "not an address"})", ": action.reminder.target: must be an email address"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.data);
    const SqlFailure f = emit_failure("signup", "u1", c.data);
    EXPECT_EQ(f.sqlstate, "NU422");
    EXPECT_EQ(f.message.rfind("rule " + std::to_string(welcome) + c.message, 0), 0u) << f.message;
  }
  EXPECT_EQ(count("nudge.events"), 0);
  EXPECT_EQ(count("nudge.reminders"), 0);
  EXPECT_EQ(count("nudge.status_flags"), 0) << "the other rule's effect is undone too";
}

TEST_F(EventsTest, AnEventEmittedInATransactionThatRollsBackLeavesNothing) {
  rule("nag", "interview_completed", kNagRule);
  {
    pqxx::work tx(conn_);
    tx.exec_params("SELECT nudge.emit_event('interview_completed', 'interviewer', 'INT_1', $1)",
                   kInterview);
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM nudge.reminders")[0].as<long>(), 1);
    tx.abort();
  }
  EXPECT_EQ(count("nudge.events"), 0);
  EXPECT_EQ(count("nudge.reminders"), 0);
}

TEST_F(EventsTest, AStopEventThatArrivesBeforeTheStartEventStillWins) {
  rule("nag", "interview_completed", kNagRule);
  rule("stop", "feedback_submitted", kStopRule);
  emit("feedback_submitted", "INT_1");
  const json answer = emit("interview_completed", "INT_1", kInterview);
  const json& r = answer["effects"][0]["reminder"];
  EXPECT_EQ(r["status"], "COMPLETED");
  EXPECT_EQ(r["completed_reason"], "stop_condition");
  EXPECT_EQ(fire_due(), 0);
}

TEST_F(EventsTest, RemindersThatEndEmitNudgesOwnEventsWithTheReason) {
  // max_fires
  const auto capped = create_recurring("u-max", 60, kDue, ", p_max_fires => 1");
  fire_due();
  // stop_condition
  const auto stopped = create_recurring("u-flag", 60, kInAnHour, stop_on("done"));
  sql("SELECT nudge.set_flag('done', true)");
  // cancelled
  const auto cancelled = create_one_time("u-cancel", kInAnHour);
  sql("SELECT nudge.cancel_reminder($1)", cancelled);
  // failed (attempts exhausted)
  const auto failing = create_one_time("u-fail", kDue, kOneAttempt);
  finish("w1", claim("w1"), "failed", "HTTP 500");
  // a one_time reminder completing by its fire emits nothing: the worker's hottest path
  create_one_time("u-fired");
  fire_due();

  const pqxx::result rows =
      sql("SELECT event_type, entity_id, data->>'reason', (data->'reminder'->>'id')::bigint, "
          "data->>'last_error' FROM nudge.events ORDER BY id");
  ASSERT_EQ(rows.size(), 4u);
  const auto row = [&](int i) {
    return std::string(rows[i][0].c_str()) + " " + rows[i][1].c_str() + " " +
           (rows[i][2].is_null() ? std::string("-") : rows[i][2].c_str()) + " " +
           rows[i][3].c_str() + " " + (rows[i][4].is_null() ? "-" : rows[i][4].c_str());
  };
  EXPECT_EQ(row(0), "nudge.reminder_completed u-max max_fires " + std::to_string(capped) + " -");
  EXPECT_EQ(row(1),
            "nudge.reminder_completed u-flag stop_condition " + std::to_string(stopped) + " -");
  EXPECT_EQ(row(2),
            "nudge.reminder_completed u-cancel cancelled " + std::to_string(cancelled) + " -");
  EXPECT_EQ(row(3), "nudge.reminder_failed u-fail - " + std::to_string(failing) + " HTTP 500");
}

// The README's escalation: nag the interviewer at most 3 times; if the feedback is still not in,
// remind their manager until it is.
class Escalation : public EventsTest {
 protected:
  void SetUp() override {
    rule("nag", "interview_completed", kNagRule);
    rule("stop", "feedback_submitted", kStopRule);
    rule("escalate", "nudge.reminder_completed", R"({"type": "remind", "reminder": {
        "entity_type": "manager", "entity_id": "{{data.reminder.payload.manager_id}}",
        "event_type": "feedback_escalation", "channel": "log", "schedule_type": "recurring",
        "interval_seconds": 86400, "delay_seconds": 0, "stop_condition_type": "db_check",
        "stop_condition_value": "{{data.reminder.stop_condition_value}}"}})",
         R"({"data.reason": "max_fires", "data.reminder.event_type": "feedback_form"})");
    nag_ = emit("interview_completed", "INT_1",
                R"({"candidate": "C-7", "manager_id": "MGR_9"})")["effects"][0]["reminder"]["id"]
               .get<std::int64_t>();
  }
  // The manager's reminder, or 0.
  std::int64_t manager_reminder() {
    const pqxx::result r = sql("SELECT id FROM nudge.reminders WHERE entity_type = 'manager'");
    return r.empty() ? 0 : r[0][0].as<std::int64_t>();
  }
  std::int64_t nag_ = 0;
};

TEST_F(Escalation, ThreeUnansweredNagsRemindTheManagerUntilTheFeedbackIsIn) {
  for (int nag = 1; nag <= 3; ++nag) {
    make_due(nag_);
    ASSERT_EQ(fire_due(), 1) << "nag " << nag;
    EXPECT_EQ(manager_reminder() != 0, nag == 3) << "after nag " << nag;
  }
  EXPECT_EQ(reason(nag_), "max_fires");
  const auto manager = manager_reminder();
  const json m = reminder_json(manager);
  EXPECT_EQ(m["entity_id"], "MGR_9");
  EXPECT_EQ(m["stop_condition_value"], "feedback_submitted:INT_1");
  EXPECT_EQ(m["status"], "ACTIVE");
  EXPECT_EQ(fire_due(), 1) << "the manager's first reminder is due at once (delay 0)";
  emit("feedback_submitted", "INT_1");
  EXPECT_EQ(status(manager), "COMPLETED");
}

TEST_F(Escalation, FeedbackAfterTheSecondNagMeansNoEscalation) {
  for (int nag = 1; nag <= 2; ++nag) {
    make_due(nag_);
    ASSERT_EQ(fire_due(), 1);
  }
  emit("feedback_submitted", "INT_1");
  EXPECT_EQ(reason(nag_), "stop_condition");
  EXPECT_EQ(manager_reminder(), 0);
  EXPECT_EQ(count("nudge.events WHERE event_type = 'nudge.reminder_completed'"), 1)
      << "the nag's end is recorded; its reason is not max_fires";
}

// The depth bound leaves breadth: three rules that each start the loop again would make 3^8.
// Every event counts, those refused at depth 8 too (explore26a #2: counting only the events whose
// rules ran, ten such rules wrote 10,011 events).
TEST_F(EventsTest, AChainOfRulesRunsAtMostAThousandEvents) {
  sql("SELECT nudge.set_flag('always', true)");
  const std::string loop = R"({"type": "remind", "reminder": {"event_type": "loop",
      "channel": "log", "schedule_type": "one_time", "stop_condition_type": "db_check",
      "stop_condition_value": "always"}})";
  rule("start", "start", loop);
  const auto ids_before = value<std::int64_t>("SELECT nextval('nudge.events_id_seq')");
  for (const std::string name : {"a", "b", "c"}) rule(name, "nudge.reminder_completed", loop);
  EXPECT_EQ(value<std::int64_t>("SELECT nextval('nudge.events_id_seq')"), ids_before + 1)
      << "a rule's check (its sample reminder is created ended) runs no chain";
  emit("start", "u1");
  EXPECT_GT(
      count("nudge.events WHERE refused = 'a chain of rules of more than 1000 events: not run'"),
      0);
  // Past the 1,000th, only what the running events (8 deep) have left of their 3 rules runs.
  EXPECT_LE(count("nudge.events"), 1000 + 8 * 3);
  EXPECT_GT(count("nudge.events WHERE refused = 'a chain of rules deeper than 8 events: not run'"),
            0);
  EXPECT_LE(count("nudge.reminders"), 1000 + 8 * 3);
  // The next event is a chain of its own.
  sql("DELETE FROM nudge.rules WHERE name IN ('b', 'c')");
  emit("start", "u2");
  EXPECT_EQ(count("nudge.events WHERE refused IS NULL AND entity_id = 'u2'"), 8);
}

// Each of 8 events makes a chain of 128 (two rules that restart the loop, to depth 7): 1,024 in
// all, which passed 1,000 when the batch's set-based path counted them as one chain. (One by one
// each is a root; AChainOfRulesRunsAtMostAThousandEvents shows a chain's own bound.)
TEST_F(EventsTest, EachEventOfABatchIsAChainOfItsOwn) {
  sql("SELECT nudge.set_flag('always', true)");
  const std::string loop = R"({"type": "remind", "reminder": {"event_type": "loop",
      "channel": "log", "schedule_type": "one_time", "stop_condition_type": "db_check",
      "stop_condition_value": "always"}})";
  rule("start", "start", loop);
  for (const std::string name : {"a", "b"}) rule(name, "nudge.reminder_completed", loop);
  json items = json::array();
  for (int i = 0; i < 8; ++i) {
    items.push_back({{"event_type", "start"},
                     {"entity_type", "interviewer"},
                     {"entity_id", "u" + std::to_string(i)}});
  }
  pqxx::work tx(conn_);
  tx.exec("SET LOCAL track_functions = 'all'");
  tx.exec_params("SELECT nudge.emit_events($1::jsonb)", items.dump());
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM nudge.events WHERE refused IS NULL")[0].as<long>(),
            8 * 128);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM nudge.events WHERE refused LIKE '%more than 1000%'")[0]
                .as<long>(),
            0);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM pg_stat_xact_user_functions "
                     "WHERE schemaname = 'nudge' AND funcname = 'emit_events_one_by_one'")[0]
                .as<long>(),
            0)
      << "the batch ran set-wise";
}

// Two batches of the same keys in opposite orders, at once: each key's lock is taken first, in
// one order, so one batch waits for the other (they deadlocked, and one failed).
TEST_F(EventsTest, BatchesSharingKeysInOtherOrdersDoNotDeadlock) {
  json items = json::array();
  for (int i = 0; i < 20; ++i) {
    items.push_back({{"event_type", "seen"},
                     {"entity_type", "interviewer"},
                     {"entity_id", "u" + std::to_string(i)},
                     {"key", "k" + std::to_string(i)}});
  }
  json reversed = items;
  std::reverse(reversed.begin(), reversed.end());
  for (int round = 0; round < 5; ++round) {
    std::vector<std::string> errors(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        try {
          pqxx::connection c(db_.url());
          pqxx::work tx(c);
          tx.exec_params("SELECT nudge.emit_events($1::jsonb)", (t == 0 ? items : reversed).dump());
          tx.exec("SELECT pg_sleep(0.05)");  // the locks held a while, as a slower batch would
          tx.commit();
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
    for (const auto& e : errors) EXPECT_EQ(e, "") << "round " << round;
    sql("DELETE FROM nudge.events");
  }
}

TEST_F(EventsTest, AChainOfRulesStopsAtADepthOfEight) {
  // Each reminder this rule creates is stopped at once (its flag is true), which emits
  // nudge.reminder_completed, which runs the rule again: a loop only the depth limit ends.
  sql("SELECT nudge.set_flag('always', true)");
  const std::string loop = R"({"type": "remind", "reminder": {"event_type": "loop",
      "channel": "log", "schedule_type": "one_time", "stop_condition_type": "db_check",
      "stop_condition_value": "always"}})";
  rule("start", "start", loop);
  rule("again", "nudge.reminder_completed", loop);
  const json answer = emit("start", "u1");
  EXPECT_TRUE(answer["created"].get<bool>());
  EXPECT_EQ(value<long>("SELECT max(depth) FROM nudge.events"), 8);
  EXPECT_EQ(count("nudge.events"), 9) << "the posted event and 8 more";
  EXPECT_EQ(value<std::string>("SELECT refused FROM nudge.events WHERE depth = 8"),
            "a chain of rules deeper than 8 events: not run");
  EXPECT_EQ(count("nudge.events WHERE refused IS NOT NULL"), 1);
  EXPECT_EQ(count("nudge.events e WHERE depth > 0 AND cause_event_id <> "
                  "(SELECT id FROM nudge.events c WHERE c.depth = e.depth - 1)"),
            0)
      << "each event names the one whose rules caused it";
}

TEST_F(EventsTest, ARuleThatCannotRunForNudgesOwnEventIsRecordedNotFatal) {
  // The worker's finish must not fail because of a rule: the failure is kept in the effects.
  const auto broken = rule("broken", "nudge.reminder_completed", R"({"type": "remind",
      "reminder": {"event_type": "x", "channel": "email", "schedule_type": "one_time",
      "target": "{{data.reminder.payload.no_such_thing}}"}})");
  const auto capped = create_recurring("u1", 60, kDue, ", p_max_fires => 1");
  // PostgreSQL's log hears of it too: the warning also reaches the session that caused it.
  struct Warnings : pqxx::errorhandler {
    using pqxx::errorhandler::errorhandler;
    std::vector<std::string> seen;
    bool operator()(const char message[]) noexcept override {
      seen.emplace_back(message);
      return true;
    }
  } warnings(conn_);
  const std::string failures =
      "SELECT value FROM nudge.gauges(100) WHERE name = 'nudge_rule_failures_total'";
  EXPECT_EQ(value<double>(failures), 0);
  EXPECT_EQ(fire_due(), 1);
  EXPECT_EQ(reason(capped), "max_fires");
  EXPECT_EQ(value<double>(failures), 1) << "an alert can count it (explore18a #6)";
  ASSERT_EQ(warnings.seen.size(), 1u);
  EXPECT_NE(
      warnings.seen[0].find("nudge: rule " + std::to_string(broken) + " did not run for event"),
      std::string::npos)
      << warnings.seen[0];
  const json effects = json::parse(value<std::string>(
      "SELECT effects::text FROM nudge.events WHERE event_type = 'nudge.reminder_completed'"));
  ASSERT_EQ(effects.size(), 1u);
  EXPECT_EQ(effects[0]["rule_id"], broken);
  EXPECT_NE(effects[0]["error"].get<std::string>().find(
                "the event has no data.reminder.payload.no_such_thing"),
            std::string::npos)
      << effects.dump();
}
TEST_F(EventsTest, AChainThroughRemindersThatEndInLaterTransactionsStopsAtADepthOfEight) {
  // A rule that makes a reminder whenever one of its reminders runs out: each end is a worker's
  // finish, a transaction of its own (the chain's bounds held only within one: it looped).
  const std::string again = R"({"type": "remind", "reminder": {"event_type": "loopy",
      "channel": "log", "schedule_type": "recurring", "interval_seconds": 1, "delay_seconds": 0,
      "max_fires": 1}})";
  rule("start", "loop_start", again);
  rule("again", "nudge.reminder_completed", again, R"({"data.reminder.event_type": "loopy"})");
  emit("loop_start", "L");
  int fires = 0;
  while (fires < 20 && fire_due() == 1) ++fires;
  EXPECT_EQ(fires, 8) << "one reminder per event at depths 0 to 7";
  EXPECT_EQ(count("nudge.reminders"), 8);
  EXPECT_EQ(count("nudge.reminders WHERE status = 'ACTIVE'"), 0);
  EXPECT_EQ(value<long>("SELECT max(depth) FROM nudge.events"), 8);
  EXPECT_EQ(value<std::string>("SELECT refused FROM nudge.events WHERE depth = 8"),
            "a chain of rules deeper than 8 events: not run");
  EXPECT_EQ(
      count("nudge.events e JOIN nudge.reminders r ON r.id = (e.data->'reminder'->>'id')::bigint "
            "WHERE e.cause_event_id IS DISTINCT FROM r.event_id"),
      0)
      << "each end names the event that made its reminder";
  // A reminder whose event was pruned with the history starts a chain anew.
  sql("UPDATE nudge.rules SET enabled = false WHERE name = 'again'");
  emit("loop_start", "M");
  sql("DELETE FROM nudge.events WHERE entity_id = 'M'");
  EXPECT_EQ(fire_due(), 1);
  EXPECT_EQ(value<long>("SELECT depth FROM nudge.events WHERE entity_id = 'M'"), 0);
}

TEST_F(EventsTest, ABatchIsAllOrNothingAndNamesTheItem) {
  rule("nag", "interview_completed", kNagRule);
  const std::string good = R"({"event_type": "interview_completed", "entity_type": "interviewer",
                               "entity_id": "INT_1", "data": )" +
                           kInterview + "}";
  const json answers =
      json::parse(value<std::string>("SELECT nudge.emit_events($1::jsonb)::text",
                                     "[" + good + "," + good +
                                         ", {\"event_type\": \"x\", "
                                         "\"entity_type\": \"e\", \"entity_id\": \"2\"}]"));
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_TRUE(answers[1]["effects"][0]["created"] == false) << "the same reminder identity";
  const SqlFailure f =
      failure_of("SELECT nudge.emit_events($1::jsonb)",
                 "[" + good + R"(, {"event_type": "x", "entity_type": "", "entity_id": "1"}])");
  EXPECT_EQ(f.sqlstate, "22023");
  EXPECT_EQ(f.message, "items[1].entity_type: must be 1 to 200 characters, not only white space");
  // Only white space is refused as "" is, by the batch and by one event.
  for (const std::string field : {"event_type", "entity_type", "entity_id"}) {
    json blank = {{"event_type", "x"}, {"entity_type", "e"}, {"entity_id", "1"}};
    blank[field] = " \t\n";
    const SqlFailure batch =
        failure_of("SELECT nudge.emit_events($1::jsonb)", "[" + good + "," + blank.dump() + "]");
    EXPECT_EQ(batch.sqlstate, "22023") << field;
    EXPECT_EQ(batch.message,
              "items[1]." + field + ": must be 1 to 200 characters, not only white space");
    const SqlFailure one = failure_of(
        "SELECT nudge.emit_event(p_event_type => $1, p_entity_type => $2, p_entity_id => $3)",
        blank["event_type"].get<std::string>(), blank["entity_type"].get<std::string>(),
        blank["entity_id"].get<std::string>());
    EXPECT_EQ(one.sqlstate, "22023") << field;
    EXPECT_EQ(one.message, field + ": must be 1 to 200 characters, not only white space");
  }
  EXPECT_EQ(count("nudge.events"), 3) << "only the first batch";
}

// A typo in an event is refused, as the REST API refuses it, on the set-wise path and the
// item-by-item one (an event with a key takes it).
TEST_F(EventsTest, ABatchRefusesAnEventWithAnUnknownKeyNamingIt) {
  rule("nag", "interview_completed", kNagRule);
  const std::string good = R"({"event_type": "interview_completed", "entity_type": "interviewer",
                               "entity_id": "INT_1", "data": )" +
                           kInterview + "}";
  const std::string typo = R"({"event_type": "x", "entity_type": "e", "entity_id": "2", )"
                           R"("occured_at": "2030-01-01T00:00:00Z"})";
  for (const std::string& first : {good, std::string(R"({"event_type": "x", "entity_type": "e", )"
                                                     R"("entity_id": "1", "key": "k1"})")}) {
    SCOPED_TRACE(first);
    const SqlFailure f =
        failure_of("SELECT nudge.emit_events($1::jsonb)", "[" + first + ", " + typo + "]");
    EXPECT_EQ(f.sqlstate, "22023");
    EXPECT_EQ(f.message, "items[1].occured_at: is not a known field");
  }
  EXPECT_EQ(count("nudge.events"), 0);
  EXPECT_EQ(count("nudge.reminders"), 0);
  // Every known key, and the same batch without the typo, is taken.
  EXPECT_EQ(
      json::parse(value<std::string>("SELECT nudge.emit_events($1::jsonb)::text",
                                     "[" + good + R"(, {"event_type": "x", "entity_type": "e", )" +
                                         R"("entity_id": "2", "data": {}, "key": "k2", )" +
                                         R"("occurred_at": "2030-01-01T00:00:00Z"}])"))
          .size(),
      2u);
}

// The JSON of an answer without what differs from one run to the next: ids and clock times.
json without_ids_and_times(json j) {
  if (j.is_object()) {
    json out = json::object();
    for (auto& [k, v] : j.items()) {
      if (k == "id" || k == "event_id" || k == "created_at" || k == "updated_at" ||
          k == "received_at" || k == "finished_at" || k == "cancelled")
        continue;
      out[k] = without_ids_and_times(v);
    }
    return out;
  }
  if (j.is_array()) {
    for (auto& v : j) v = without_ids_and_times(v);
  }
  return j;
}

TEST_F(EventsTest, ABatchRunsEachRuleOverAllItsEventsAndAnswersAsOneEventAtATimeWould) {
  rule("nag", "interview_completed", R"({"type": "remind", "reminder": {
      "event_type": "feedback_form", "channel": "email", "schedule_type": "recurring",
      "interval_minutes": 60, "target": "{{data.email}}", "stop_condition_type": "db_check",
      "stop_condition_value": "feedback_submitted:{{ entity_id }}",
      "payload": {"candidate": "{{data.candidate}}", "n": "{{data.n}}", "said": "x \"{{data.n}}\"",
                  "note": "{{event_type}} for {{entity_type}} {{entity_id}}"}}})");
  rule("urgent", "interview_completed", R"({"type": "remind", "reminder": {"event_type": "page",
      "channel": "log", "schedule_type": "one_time", "delay_seconds": 30}})",
       R"({"data.priority": "high"})");
  rule("seen", "interview_completed",
       R"({"type": "set_flag", "flag": {"key": "seen:{{entity_type}}", "value": true}})");
  rule("withdrawn", "candidate_withdrew",
       R"({"type": "cancel", "cancel": {"event_type": "feedback_form"}})");
  rule("digest", "interview_completed", R"({"type": "remind", "reminder": {"entity_type": "team",
      "entity_id": "t-{{data.n}}", "event_type": "digest", "channel": "log",
      "schedule_type": "cron", "cron": "0 9 * * 1", "timezone": "Europe/Paris",
      "misfire_policy": "skip", "max_attempts": 3, "delay_seconds": 60}})");
  // A reminder the cancel finds.
  sql("SELECT nudge.create_reminder('interviewer', 'INT_9', 'feedback_form', 'log', 'recurring', "
      "p_interval_seconds => 60)");
  std::string items = "[";
  for (int i = 1; i <= 5; ++i) {
    items += (i > 1 ? "," : "") + json{{"event_type", "interview_completed"},
                                       {"entity_type", "interviewer"},
                                       {"entity_id", "INT_" + std::to_string(i)},
                                       {"occurred_at", "2026-06-01T08:00:00Z"},
                                       {"data",
                                        {{"email", "i" + std::to_string(i) + "@example.com"},
                                         // Item 4's value looks like a placeholder: it is
                                         // text, never rendered a second time.
                                         {"candidate", i == 4 ? std::string("{{entity_id}} \\")
                                                              : "C \"" + std::to_string(i) + "\""},
                                         {"n", i},
                                         {"priority", i % 2 == 0 ? "high" : "low"}}}}
                                      .dump();
  }
  items += R"(, {"event_type": "candidate_withdrew", "entity_type": "interviewer",
                 "entity_id": "INT_9", "occurred_at": "2026-06-01T08:00:00Z"}])";
  // The answer, and how many events were run one at a time to give it (the view also counts
  // calls not yet flushed from earlier transactions: the difference is this call's).
  const auto answer_of = [&](const std::string& function) {
    pqxx::work tx(conn_);
    tx.exec("SET LOCAL track_functions = 'all'");
    const std::string singles =
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions "
        "WHERE schemaname = 'nudge' AND funcname = 'emit_event'";
    const long before = tx.exec1(singles)[0].as<long>();
    const json a = json::parse(
        tx.exec_params1("SELECT " + function + "($1::jsonb)::text", items)[0].as<std::string>());
    const long after = tx.exec1(singles)[0].as<long>();
    tx.abort();
    return std::make_pair(a, after - before);
  };
  const auto answers_agree = [&] {
    const auto [batch, batch_singles] = answer_of("nudge.emit_events");
    const auto [one_by_one, singles] = answer_of("nudge.emit_events_one_by_one");
    const auto [as_text, text_singles] = answer_of("nudge.record_events");
    EXPECT_EQ(batch.size(), 6u);
    EXPECT_EQ(without_ids_and_times(batch), without_ids_and_times(one_by_one)) << batch.dump(1);
    EXPECT_EQ(without_ids_and_times(as_text), without_ids_and_times(batch));
    EXPECT_EQ(singles, 6);
    EXPECT_EQ(batch_singles, 0) << "the batch ran set-wise";
    EXPECT_EQ(text_singles, 0) << "the batch ran set-wise";
    return batch;
  };
  // Every reminder plainly new: the set-based create.
  EXPECT_EQ(answers_agree()[2]["effects"][0]["reminder"]["status"], "ACTIVE");
  // One whose flag is already true (created COMPLETED): that rule's reminders one by one.
  sql("SELECT nudge.set_flag('feedback_submitted:INT_3', true)");
  const json batch = answers_agree();
  EXPECT_EQ(batch[3]["effects"][0]["reminder"]["payload"]["candidate"], "{{entity_id}} \\");
  {
    // The API's text is the one jsonb prints: the same keys, order and spacing.
    pqxx::work tx(conn_);
    EXPECT_TRUE(
        tx.exec_params1("SELECT a = a::jsonb::text FROM nudge.record_events($1::jsonb) a", items)[0]
            .as<bool>());
    tx.abort();
  }
  EXPECT_EQ(batch[5]["effects"][0]["cancelled"].size(), 1u);
  EXPECT_EQ(batch[2]["effects"][0]["reminder"]["status"], "COMPLETED") << "its flag was true";
  EXPECT_EQ(batch[1]["effects"].size(), 4u) << "priority high: nag, urgent, seen and digest";
  EXPECT_EQ(batch[0]["effects"][2]["reminder"]["entity_id"], "t-1");
  EXPECT_EQ(batch[0]["effects"][2]["reminder"]["misfire_policy"], "skip");
  EXPECT_EQ(batch[0]["effects"][0]["reminder"]["payload"]["n"], 1);
  EXPECT_EQ(batch[0]["effects"][0]["reminder"]["payload"]["said"], "x \"1\"");
}

TEST_F(EventsTest, ABatchThatCannotRunSetWiseAnswersItemByItem) {
  rule("nag", "interview_completed", kNagRule);
  const std::string good = R"({"event_type": "interview_completed", "entity_type": "interviewer",
                               "entity_id": "INT_1", "data": )" +
                           kInterview + "}";
  // A value an event lacks: the item-by-item path names it.
  const SqlFailure missing = failure_of(
      "SELECT nudge.emit_events($1::jsonb)",
      "[" + good + R"(, {"event_type": "interview_completed", "entity_type": "interviewer",
                         "entity_id": "INT_2"}])");
  EXPECT_EQ(missing.sqlstate, "NU422");
  EXPECT_EQ(missing.message.rfind("items[1]: rule ", 0), 0u) << missing.message;
  // Two events of one entity, in order: the second finds the first's reminder.
  const json same = json::parse(value<std::string>("SELECT nudge.emit_events($1::jsonb)::text",
                                                   "[" + good + "," + good + "]"));
  EXPECT_EQ(same[0]["effects"][0]["created"], true);
  EXPECT_EQ(same[1]["effects"][0]["created"], false);
  // A key: its first answer again.
  const std::string keyed = R"({"event_type": "interview_completed", "entity_type": "interviewer",
                                "entity_id": "INT_3", "key": "k3", "data": )" +
                            kInterview + "}";
  const json first = json::parse(
      value<std::string>("SELECT nudge.emit_events($1::jsonb)::text", "[" + keyed + "]"));
  const json again = json::parse(
      value<std::string>("SELECT nudge.emit_events($1::jsonb)::text", "[" + keyed + "]"));
  EXPECT_EQ(again[0]["created"], false);
  EXPECT_EQ(again[0]["effects"], first[0]["effects"]);
}

// Saving a rule checks everything a create would, naming the field.
TEST_F(EventsTest, ARuleIsCheckedWhenItIsSavedNamingTheField) {
  const std::string remind = R"({"type": "remind", "reminder": {"event_type": "f",
      "channel": "log", "schedule_type": "one_time")";
  const struct {
    std::string action;
    std::string when;
    std::string field;
  } cases[] = {
      {R"({"type": "shout"})", "{}", "action.type"},
      {R"({"type": "remind", "reminder": {}, "extra": 1})", "{}", "action.extra"},
      {R"({"type": "remind"})", "{}", "action.reminder"},
      {R"({"type": "remind", "reminder": {"channel": "log", "schedule_type": "one_time"}})", "{}",
       "action.reminder.event_type"},
      {remind + R"(, "colour": "red"}})", "{}", "action.reminder.colour"},
      {remind + R"(, "run_at": "2026-01-01"}})", "{}", "action.reminder.run_at"},
      {remind + R"(, "run_at": "{{data.day}}T09:00:00Z"}})", "{}", "action.reminder.run_at"},
      {remind + R"(, "max_fires": "3"}})", "{}", "action.reminder.max_fires"},
      {remind + R"(, "delay_seconds": -1}})", "{}", "action.reminder.delay_seconds"},
      {remind + R"(, "target": "{{nope}}"}})", "{}", "action.reminder.target"},
      // Named by its place in the payload.
      {remind + R"(, "payload": {"a": ["{{data.x}}", "{{oops}}"]}}})", "{}",
       "action.reminder.payload.a[1]"},
      {remind + R"(, "stop_condition_value": "{{entity_id"}})", "{}",
       "action.reminder.stop_condition_value"},
      {R"({"type": "remind", "reminder": {"event_type": "f", "channel": "fax",
         "schedule_type": "one_time"}})",
       "{}", "action.reminder.channel"},
      {R"({"type": "remind", "reminder": {"event_type": "f", "channel": "webhook",
         "schedule_type": "one_time", "target": "ftp://x"}})",
       "{}", "action.reminder.target"},
      {R"({"type": "remind", "reminder": {"event_type": "f", "channel": "log",
         "schedule_type": "cron", "cron": "61 * * * *"}})",
       "{}", "action.reminder.cron"},
      {remind + R"(, "target": "http://127.0.0.1:18777/"}})", "{}", "action.reminder.target"},
      {remind + R"(, "entity_type": "  "}})", "{}", "action.reminder.entity_type"},
      {R"({"type": "set_flag", "flag": {"key": "k"}})", "{}", "action.flag.value"},
      {R"({"type": "set_flag", "flag": {"key": "k", "value": true, "x": 1}})", "{}",
       "action.flag.x"},
      {R"({"type": "cancel", "cancel": {}})", "{}", "action.cancel.event_type"},
      {R"({"type": "cancel", "cancel": {"event_type": "f"}})", R"({"colour": "red"})",
       "when.colour"},
      {R"({"type": "cancel", "cancel": {"event_type": "f"}})", R"({"data.x": [1]})", "when.data.x"},
      // An event's own fields have one type each: a condition of another never held.
      {R"({"type": "cancel", "cancel": {"event_type": "f"}})", R"({"event_id": "5"})",
       "when.event_id"},
      {R"({"type": "cancel", "cancel": {"event_type": "f"}})", R"({"entity_id": 7})",
       "when.entity_id"},
      {R"({"type": "cancel", "cancel": {"event_type": "f"}})", R"({"entity_type": null})",
       "when.entity_type"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.action);
    const SqlFailure f =
        failure_of("SELECT nudge.create_rule('r', 'e', $1::jsonb, $2::jsonb)", c.action, c.when);
    EXPECT_EQ(f.sqlstate, "22023");
    EXPECT_EQ(f.message.rfind(c.field + ": ", 0), 0u) << f.message;
  }
  EXPECT_EQ(count("nudge.rules"), 0);
  EXPECT_EQ(count("nudge.reminders"), 0) << "the sample create of a check leaves nothing";
  // A brace that closes nothing is quoted with what follows it.
  EXPECT_EQ(failure_of("SELECT nudge.create_rule('r', 'e', $1::jsonb)",
                       remind + R"(, "stop_condition_value": "done:{{entity_id by then"}})")
                .message,
            "action.reminder.stop_condition_value: has a {{ or }} that does not close a "
            "placeholder: \"{{entity_id by then\"");
  // Plain SQL is checked the same way.
  EXPECT_EQ(failure_of("INSERT INTO nudge.rules (name, event_type, action) VALUES ('r', 'e', "
                       "'{\"type\": \"nope\"}')")
                .sqlstate,
            "22023");
}

// Every rule of an event's type runs for it, so the bound keeps one request's work bounded.
TEST_F(EventsTest, AnEventTypeHasAtMostTwentyEnabledRules) {
  const std::string action = R"({"type": "cancel", "cancel": {"event_type": "f"}})";
  for (int i = 1; i <= 20; ++i) rule("r" + std::to_string(i), "e", action);
  const auto refused = [](const SqlFailure& f) {
    EXPECT_EQ(f.sqlstate, "22023");
    EXPECT_EQ(f.message,
              "event_type: at most 20 enabled rules per event type, and \"e\" has 20: disable or "
              "delete one first");
  };
  refused(failure_of("SELECT nudge.create_rule('r21', 'e', $1::jsonb)", action));
  refused(failure_of("INSERT INTO nudge.rules (name, event_type, action) VALUES ('r21', 'e', $1)",
                     action));
  // A disabled rule is saved; enabling it, or moving an enabled rule to the type, is not.
  const auto spare = value<std::int64_t>(
      "SELECT (nudge.create_rule('r21', 'e', $1::jsonb, p_enabled => false)).id", action);
  refused(failure_of("SELECT nudge.update_rule($1, p_enabled => true)", spare));
  const auto other = rule("o", "other", action);
  refused(failure_of("UPDATE nudge.rules SET event_type = 'e' WHERE id = $1", other));
  // Changing an enabled rule of the type keeps it; disabling one makes room.
  sql("UPDATE nudge.rules SET name = 'renamed' WHERE name = 'r1'");
  sql("UPDATE nudge.rules SET enabled = false WHERE name = 'r2'");
  sql("SELECT nudge.update_rule($1, p_enabled => true)", spare);
  EXPECT_EQ(count("nudge.rules WHERE event_type = 'e' AND enabled"), 20);
}

// Every workflow's escalation is a rule on Nudge's own events, told apart by its "when"
// (explore26a #4: a team with several workflows met 20).
TEST_F(EventsTest, NudgesOwnEventTypesTakeAHundredEnabledRules) {
  const std::string action = R"({"type": "cancel", "cancel": {"event_type": "f"}})";
  for (int i = 1; i <= 100; ++i) rule("r" + std::to_string(i), "nudge.reminder_completed", action);
  const auto refused =
      failure_of("SELECT nudge.create_rule('r101', 'nudge.reminder_completed', $1::jsonb)", action);
  EXPECT_EQ(refused.sqlstate, "22023");
  EXPECT_EQ(refused.message,
            "event_type: at most 100 enabled rules per event type, and "
            "\"nudge.reminder_completed\" has 100: disable or delete one first");
}

}  // namespace
}  // namespace nudge::test
