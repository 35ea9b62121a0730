// A webhook URL kept whole in a secret ({{secret.NAME}} as the target: a Slack incoming webhook's
// URL is its credential): stored, answered and counted by the breaker as the placeholder, filled
// in by a real nudge-worker from its own [secrets], and never shown in the row, the answers, the
// history, the attempts or the logs; refused with the field named where it cannot stand.

#include "api/api_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

constexpr char kSlackPath[] = "/services/T000/B000/XXXXsecretpart";

class SecretTarget : public ApiTest {
 protected:
  // The API checks the name, and that a target's secret holds a URL; the value that counts is
  // the worker's. TOKEN is a header's secret.
  SecretTarget()
      : ApiTest({{"NUDGE_SECRETS_SLACK", "https://hooks.slack.com/services/a/b/c"},
                 {"NUDGE_SECRETS_TOKEN", "Bearer-abc123"}}) {}
  ~SecretTarget() override {
    if (!HasFailure() && worker_) worker_->remove_logs();
  }

  void start_worker(std::map<std::string, std::string> env) {
    env["NUDGE_DATABASE_URL"] = db_.url();
    env["NUDGE_WORKER_IDLE_CAP_SECONDS"] = "300";
    env["NUDGE_RETRY_BASE_DELAY_MS"] = "100";
    env["NUDGE_RETRY_MAX_DELAY_MS"] = "100";
    env["NUDGE_LOG_LEVEL"] = "debug";
    env[kAllowPrivate] = kLoopbackNetworks;
    worker_ = std::make_unique<ChildProcess>(std::vector<std::string>{program("nudge-worker")}, env,
                                             log_.string() + ".worker");
  }
  std::string logs() const { return api_->log() + (worker_ ? worker_->log() : ""); }
  // Waits for the reminder's first execution; its outcome.
  std::string outcome_of(long id) {
    const auto outcome = first_outcome(id);
    EXPECT_TRUE(outcome) << logs();
    return outcome.value_or("");
  }

  WebhookReceiver receiver_;
  std::unique_ptr<ChildProcess> worker_;
};

TEST_F(SecretTarget, TheWorkerFillsTheUrlInAndItShowsNowhere) {
  // The receiver echoes the path it was asked on and refuses the first attempt.
  receiver_.on(kSlackPath, [](int n) { return n == 1 ? 500 : 200; });
  receiver_.respond(kSlackPath, [](const ReceivedRequest& r) { return "ok " + r.path; });
  const Reply created = post("/v1/reminders", R"({"entity_type": "team", "entity_id": "ops",
    "event_type": "standup", "channel": "webhook", "schedule_type": "one_time",
    "run_at": "2020-01-01T09:00:00Z", "max_attempts": 2, "target": "{{secret.slack}}",
    "payload": {"subject": "stand-up"}, "request": {"body": {"text": "{{payload.subject}}"}}})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(created.body["target"], "{{secret.slack}}");
  const long id = created.body["id"];

  start_worker({{"NUDGE_SECRETS_SLACK", receiver_.url(kSlackPath)}});
  EXPECT_EQ(outcome_of(id), "delivered");
  const auto got = receiver_.requests_to(kSlackPath);
  ASSERT_EQ(got.size(), 2u) << logs();
  EXPECT_EQ(got[1].body, R"({"text": "stand-up"})");

  const auto history = get("/v1/reminders/" + std::to_string(id) + "/executions");
  const std::map<std::string, std::string> places = {
      {"the row", value<std::string>("SELECT r::text FROM nudge.reminders r WHERE id = $1", id)},
      {"the answer", get("/v1/reminders/" + std::to_string(id)).body.dump()},
      {"the history", history.body.dump()},
      {"delivery_attempts",
       value<std::string>("SELECT string_agg(a::text, ' ') FROM nudge.delivery_attempts a")},
      {"the breakers", get("/v1/targets").body.dump()},
      {"the logs", logs()},
  };
  for (const auto& [place, text] : places)
    EXPECT_EQ(text.find("XXXXsecretpart"), std::string::npos) << place << ": " << text;
  const json attempts = history.body["items"][0]["delivery_attempts"];
  ASSERT_EQ(attempts.size(), 2u) << history.body.dump();
  EXPECT_EQ(attempts[0]["status_code"], 500);
  EXPECT_EQ(attempts[0]["response"], "ok ***");
  // The breaker counts the target under its name.
  const json hosts = get("/v1/targets").body["items"];
  ASSERT_EQ(hosts.size(), 1u) << hosts.dump();
  EXPECT_EQ(hosts[0]["host"], "{{secret.slack}}");
}

TEST_F(SecretTarget, ARuleKeepsItForEachEventItCreates) {
  const Reply rule = post("/v1/rules", R"({"name": "tell slack", "event_type": "deploy",
    "action": {"type": "remind", "reminder": {"event_type": "deploy_note", "channel": "webhook",
      "schedule_type": "one_time", "target": "{{secret.slack}}",
      "payload": {"text": "{{data.version}} is out"}}}})");
  ASSERT_EQ(rule.status, 201) << rule.body.dump();
  const Reply event = post("/v1/events", R"({"event_type": "deploy", "entity_type": "service",
    "entity_id": "api", "data": {"version": "v1.2"}})");
  ASSERT_EQ(event.status, 201) << event.body.dump();
  EXPECT_EQ(event.body["effects"][0]["reminder"]["target"], "{{secret.slack}}");

  start_worker({{"NUDGE_SECRETS_SLACK", receiver_.url(kSlackPath)}});
  EXPECT_EQ(outcome_of(event.body["effects"][0]["reminder"]["id"]), "delivered");
  ASSERT_EQ(receiver_.requests_to(kSlackPath).size(), 1u) << logs();
}

TEST_F(SecretTarget, AWorkerWithoutTheSecretFailsTheAttemptWithAClearError) {
  const Reply created = post("/v1/reminders", R"({"entity_type": "team", "entity_id": "ops",
    "event_type": "standup", "channel": "webhook", "schedule_type": "one_time",
    "run_at": "2020-01-01T09:00:00Z", "max_attempts": 1, "target": "{{secret.slack}}"})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  start_worker({});
  EXPECT_EQ(outcome_of(created.body["id"]), "failed");
  EXPECT_EQ(
      get("/v1/reminders/" + std::to_string(created.body["id"].get<long>())).body["last_error"],
      "target: secret \"slack\" is not configured in this worker (set [secrets] slack or "
      "NUDGE_SECRETS_SLACK)");
  EXPECT_TRUE(receiver_.requests().empty());
}

// A rule's target filled from an event's data may name a secret too; one nudge-api lacks is
// refused as a create's is, naming the rule's field, and nothing is written (explore25a #1: 201,
// then 3 failed attempts).
TEST_F(SecretTarget, AnEventWhoseDataNamesAnUnknownSecretAsTheTargetIsA422) {
  const Reply rule = post("/v1/rules", R"({"name": "page", "event_type": "incident",
    "action": {"type": "remind", "reminder": {"event_type": "page", "channel": "webhook",
    "schedule_type": "one_time", "delay_seconds": 60, "target": "{{data.webhook}}"}}})");
  ASSERT_EQ(rule.status, 201) << rule.body.dump();
  const auto event = [](const std::string& id, const std::string& webhook) {
    return R"({"event_type": "incident", "entity_type": "service", "entity_id": ")" + id +
           R"(", "data": {"webhook": ")" + webhook + R"("}})";
  };
  const Reply unknown = post("/v1/events", event("s1", "{{secret.teams}}"));
  ASSERT_EQ(unknown.status, 422) << unknown.body.dump();
  EXPECT_EQ(unknown.body["error"]["rule_id"], rule.body["id"]);
  EXPECT_EQ(unknown.error_field(), "action.reminder.target");
  EXPECT_NE(unknown.body["error"]["message"].get<std::string>().find(
                "{{secret.teams}} is not configured as a webhook URL"),
            std::string::npos)
      << unknown.body.dump();
  const Reply token = post("/v1/events", event("s0", "{{secret.token}}"));
  ASSERT_EQ(token.status, 422) << token.body.dump();
  EXPECT_EQ(token.error_field(), "action.reminder.target");
  const Reply batch = post("/v1/events/batch", R"({"items": [)" + event("s2", "{{secret.slack}}") +
                                                   ", " + event("s3", "{{secret.teams}}") + "]}");
  ASSERT_EQ(batch.status, 422) << batch.body.dump();
  EXPECT_EQ(batch.error_field(), "items[1].action.reminder.target") << batch.body.dump();
  EXPECT_EQ(get("/v1/events").body["items"].size(), 0u);
  EXPECT_EQ(get("/v1/reminders").body["items"].size(), 0u);

  const Reply known = post("/v1/events", event("s4", "{{secret.slack}}"));
  ASSERT_EQ(known.status, 201) << known.body.dump();
  EXPECT_EQ(known.body["effects"][0]["reminder"]["target"], "{{secret.slack}}");
}

TEST_F(SecretTarget, WhereItCannotStandItIsRefusedNamingTheField) {
  const auto create = [&](const std::string& channel, const std::string& target) {
    return post("/v1/reminders", R"({"entity_type": "team", "entity_id": "ops",
      "event_type": "standup", "channel": ")" +
                                     channel +
                                     R"(", "schedule_type": "one_time",
      "run_at": "2030-01-01T09:00:00Z", "target": ")" +
                                     target + R"("})");
  };
  const Reply unknown = create("webhook", "{{secret.teams}}");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.body["error"]["code"], "unknown_secret");
  EXPECT_EQ(unknown.body["error"]["field"], "target");
  const Reply token = create("webhook", "{{secret.token}}");
  EXPECT_EQ(token.status, 400) << token.body.dump();
  EXPECT_EQ(token.body["error"]["code"], "invalid_value");
  EXPECT_EQ(token.body["error"]["field"], "target");
  EXPECT_EQ(token.body.dump().find("abc123"), std::string::npos) << "the value is not shown";
  for (const auto& [channel, target] : std::vector<std::pair<std::string, std::string>>{
           {"webhook", "https://hooks.slack.com/{{secret.slack}}"},
           {"webhook", "{{ secret.slack }}"},
           {"email", "{{secret.slack}}"}}) {
    const Reply r = create(channel, target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(r.body["error"]["field"], "target") << r.body.dump();
  }
  const Reply contact = put("/v1/contacts/team/ops/webhook", R"({"address": "{{secret.teams}}"})");
  EXPECT_EQ(contact.status, 400);
  EXPECT_EQ(contact.body["error"]["code"], "unknown_secret");
  EXPECT_EQ(contact.body["error"]["field"], "address");
  const Reply rule = post("/v1/rules", R"({"name": "r", "event_type": "deploy",
    "action": {"type": "remind", "reminder": {"event_type": "n", "channel": "webhook",
      "schedule_type": "one_time", "target": "{{secret.teams}}"}}})");
  EXPECT_EQ(rule.status, 400);
  EXPECT_EQ(rule.body["error"]["field"], "action.reminder.target") << rule.body.dump();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.rules"), 0);
}

}  // namespace
}  // namespace nudge::test
