// The README's webhook recipes end to end: created over HTTP as the README shows, delivered by a
// real nudge-worker to a local receiver that checks the exact request (method, path, headers,
// bytes, signature). Then where a secret must never be (the row, the answers, the recorded
// attempts, the logs), a worker without a secret the API knew, and a rule carrying a request.

#include <algorithm>

#include "api/api_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

constexpr char kSigningKey[] = "whsec_recipes_0123456789";
// Base64 of "AC123:auth-token", as a Twilio-style gateway takes it in Basic auth.
constexpr char kTwilioBasic[] = "QUMxMjM6YXV0aC10b2tlbg==";
constexpr char kTrackerToken[] = "trk_live_5f1b2c3d4e5f60718293";

// The API checks that a secret exists and may go to the target's host; the Slack URL that counts
// is the worker's. The receiver's host is where header secrets may go.
const std::map<std::string, std::string> kSecrets = {
    {"NUDGE_SECRETS_TWILIO", kTwilioBasic},
    {"NUDGE_SECRET_HOSTS_TWILIO", "127.0.0.1"},
    {"NUDGE_SECRETS_TRACKER", kTrackerToken},
    {"NUDGE_SECRET_HOSTS_TRACKER", "127.0.0.1"},
    {"NUDGE_SECRETS_SLACK", "https://hooks.slack.com/services/T000/B000/XXXX"}};

class WebhookRecipes : public ApiTest {
 protected:
  WebhookRecipes() : ApiTest(kSecrets) {}
  ~WebhookRecipes() override {
    if (!HasFailure())
      for (const auto& w : workers_) w->remove_logs();
  }

  // A worker with the recipes' secrets (or `env` instead) and the signing key.
  void start_worker(std::map<std::string, std::string> env = kSecrets) {
    env["NUDGE_DATABASE_URL"] = db_.url();
    env["NUDGE_WEBHOOK_SECRET"] = kSigningKey;
    env["NUDGE_WORKER_IDLE_CAP_SECONDS"] = "300";
    env[kAllowPrivate] = kLoopbackNetworks;
    workers_.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{program("nudge-worker")}, env,
        log_.string() + ".worker" + std::to_string(workers_.size())));
  }
  // Creates a reminder over HTTP; its id.
  long create(const std::string& body) {
    const Reply r = post("/v1/reminders", body);
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.body.value("id", 0L);
  }
  // Waits for the reminder's one execution; its outcome.
  std::string outcome_of(long id) {
    const auto outcome = first_outcome(id);
    EXPECT_TRUE(outcome) << logs();
    return outcome.value_or("");
  }
  std::string scheduled_for(long id) {
    return value<std::string>(
        "SELECT nudge.rfc3339_in_zone(scheduled_for, 'UTC') FROM nudge.executions "
        "WHERE reminder_id = $1",
        id);
  }
  std::string logs() const {
    std::string out = api_->log();
    for (const auto& w : workers_) out += w->log();
    return out;
  }
  // The one request the receiver got on `path`, with the signature over its exact bytes.
  ReceivedRequest only_request(const std::string& path) {
    const auto got = receiver_.requests_to(path);
    EXPECT_EQ(got.size(), 1u) << logs();
    if (got.empty()) return {};
    EXPECT_TRUE(
        nudge_signature_verifies(got[0].headers.at("nudge-signature"), kSigningKey, got[0].body));
    return got[0];
  }

  WebhookReceiver receiver_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

TEST_F(WebhookRecipes, ASlackIncomingWebhookGetsItsTextMessage) {
  const long id = create(R"({"entity_type": "team", "entity_id": "ops", "event_type": "standup",
    "channel": "webhook", "schedule_type": "one_time", "run_at": "2020-01-01T09:00:00Z",
    "target": "{{secret.slack}}", "payload": {"subject": "stand-up in 5 minutes \"now\""},
    "request": {"body": {"text": "Reminder: {{payload.subject}}"}}})");
  auto env = kSecrets;
  env["NUDGE_SECRETS_SLACK"] = receiver_.url("/services/T000/B000/XXXX");
  start_worker(env);
  EXPECT_EQ(outcome_of(id), "delivered");
  const ReceivedRequest r = only_request("/services/T000/B000/XXXX");
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.body, R"({"text": "Reminder: stand-up in 5 minutes \"now\""})");
}

TEST_F(WebhookRecipes, ATwilioStyleGatewayGetsAFormWithBasicAuthFromASecret) {
  const long id =
      create(R"({"entity_type": "candidate", "entity_id": "C-7", "event_type": "sms",
    "channel": "webhook", "schedule_type": "one_time", "run_at": "2020-01-01T09:00:00Z",
    "target": ")" +
             receiver_.url("/2010-04-01/Accounts/AC123/Messages.json") +
             R"(", "payload": {"to": "+15557654321", "text": "Interview at 10:00 & bring ID ✓"},
    "request": {"headers": {"Authorization": "Basic {{secret.twilio}}"},
                "content_type": "application/x-www-form-urlencoded",
                "body": "To={{payload.to}}&From=%2B15551234567&Body={{payload.text}}"}})");
  start_worker();
  EXPECT_EQ(outcome_of(id), "delivered");
  const ReceivedRequest r = only_request("/2010-04-01/Accounts/AC123/Messages.json");
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.headers.at("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(r.headers.at("authorization"), std::string("Basic ") + kTwilioBasic);
  EXPECT_EQ(
      r.body,
      "To=%2B15557654321&From=%2B15551234567&Body=Interview+at+10%3A00+%26+bring+ID+%E2%9C%93");
}

TEST_F(WebhookRecipes, AJsonApiGetsAPutWithABearerToken) {
  const long id = create(R"({"entity_type": "ticket", "entity_id": "T-42", "event_type": "due",
    "channel": "webhook", "schedule_type": "one_time", "run_at": "2020-01-01T09:00:00Z",
    "target": ")" + receiver_.url("/api/tickets/T-42") +
                         R"(",
    "request": {"method": "PUT",
                "headers": {"Authorization": "Bearer {{secret.tracker}}", "Accept": "application/json"},
                "body": {"status": "reminded", "reminder_id": "{{reminder_id}}",
                         "attempt": "{{attempt}}", "at": "{{scheduled_for}}"}}})");
  start_worker();
  EXPECT_EQ(outcome_of(id), "delivered");
  const ReceivedRequest r = only_request("/api/tickets/T-42");
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.headers.at("accept"), "application/json");
  EXPECT_EQ(r.headers.at("authorization"), std::string("Bearer ") + kTrackerToken);
  EXPECT_EQ(r.headers.at("idempotency-key").rfind("nudge-" + std::to_string(id) + "-", 0), 0u);
  // JSON as PostgreSQL writes it: keys shortest first.
  EXPECT_EQ(r.body, R"({"at": ")" + scheduled_for(id) +
                        R"(", "status": "reminded", "attempt": 1, "reminder_id": )" +
                        std::to_string(id) + "}");
}

TEST_F(WebhookRecipes, ASecretNeverReachesTheRowTheAnswersTheAttemptsOrTheLogs) {
  // The receiver echoes what it got and refuses the first attempt: the response, the error
  // and the log line of a failed attempt all pass by the secret.
  receiver_.on("/echo", [](int n) { return n == 1 ? 500 : 200; });
  receiver_.respond("/echo", [](const ReceivedRequest& r) {
    return "got " + r.headers.at("authorization") + " " + r.body;
  });
  const long id = create(R"({"entity_type": "ticket", "entity_id": "T-1", "event_type": "due",
    "channel": "webhook", "schedule_type": "one_time", "run_at": "2020-01-01T09:00:00Z",
    "max_attempts": 2, "target": ")" +
                         receiver_.url("/echo") + R"(",
    "request": {"method": "PATCH", "headers": {"Authorization": "Bearer {{secret.tracker}}"},
                "body": {"n": "{{attempt}}"}}})");
  start_worker({{"NUDGE_SECRETS_TRACKER", kTrackerToken},
                {"NUDGE_SECRET_HOSTS_TRACKER", "127.0.0.1"},
                {"NUDGE_RETRY_BASE_DELAY_MS", "100"},
                {"NUDGE_RETRY_MAX_DELAY_MS", "100"},
                {"NUDGE_LOG_LEVEL", "debug"}});
  EXPECT_EQ(outcome_of(id), "delivered");
  ASSERT_EQ(receiver_.requests_to("/echo").size(), 2u);
  EXPECT_EQ(receiver_.requests_to("/echo")[0].headers.at("authorization"),
            std::string("Bearer ") + kTrackerToken)
      << "it was sent";

  const std::string secret = kTrackerToken;
  const auto reminder = get("/v1/reminders/" + std::to_string(id));
  const auto history = get("/v1/reminders/" + std::to_string(id) + "/executions");
  const std::map<std::string, std::string> places = {
      {"the row", value<std::string>("SELECT r::text FROM nudge.reminders r WHERE id = $1", id)},
      {"the answer", reminder.body.dump()},
      {"the history", history.body.dump()},
      {"delivery_attempts",
       value<std::string>("SELECT string_agg(a::text, ' ') FROM nudge.delivery_attempts a")},
      {"the logs", logs()},
  };
  for (const auto& [place, text] : places) {
    EXPECT_EQ(text.find(secret), std::string::npos) << place << ": " << text;
    EXPECT_EQ(text.find(secret.substr(0, 12)), std::string::npos) << place;
  }
  // What the attempts show instead: the request with its placeholder, the response masked.
  const json attempts = history.body["items"][0]["delivery_attempts"];
  ASSERT_EQ(attempts.size(), 2u) << history.body.dump();
  EXPECT_EQ(attempts[0]["request"]["headers"]["Authorization"], "Bearer {{secret.tracker}}");
  EXPECT_EQ(attempts[0]["request"]["body"], R"({"n": 1})");
  EXPECT_EQ(attempts[0]["response"], R"(got Bearer *** {"n": 1})");
  EXPECT_EQ(attempts[1]["request"]["body"], R"({"n": 2})");
}

TEST_F(WebhookRecipes, AWorkerWithoutASecretTheApiKnewFailsTheAttemptWithAClearError) {
  const long id = create(R"({"entity_type": "candidate", "entity_id": "C-8", "event_type": "sms",
    "channel": "webhook", "schedule_type": "one_time", "run_at": "2020-01-01T09:00:00Z",
    "max_attempts": 1, "target": ")" +
                         receiver_.url("/sms") + R"(",
    "request": {"headers": {"Authorization": "Basic {{secret.twilio}}"}}})");
  start_worker(
      {{"NUDGE_SECRETS_TRACKER", kTrackerToken}, {"NUDGE_SECRET_HOSTS_TRACKER", "127.0.0.1"}});
  EXPECT_EQ(outcome_of(id), "failed");
  const auto reminder = get("/v1/reminders/" + std::to_string(id));
  EXPECT_EQ(reminder.body["status"], "FAILED");
  EXPECT_EQ(reminder.body["last_error"],
            "request.headers.Authorization: secret \"twilio\" is not configured in this worker "
            "(set [secrets] twilio or NUDGE_SECRETS_TWILIO)");
  EXPECT_TRUE(receiver_.requests().empty()) << "nothing is sent";
  ASSERT_TRUE(workers_[0]->running()) << logs();
}

TEST_F(WebhookRecipes, ARuleCarryingARequestDeliversItForEachEvent) {
  const Reply rule =
      post("/v1/rules", R"({"name": "tell the tracker", "event_type": "interview_completed",
    "action": {"type": "remind", "reminder": {"event_type": "feedback_due", "channel": "webhook",
      "schedule_type": "one_time", "target": ")" +
                            receiver_.url("/api/feedback") + R"(",
      "payload": {"candidate": "{{data.candidate}}"},
      "request": {"method": "PUT", "headers": {"Authorization": "Bearer {{secret.tracker}}"},
                  "body": {"candidate": "{{payload.candidate}}", "interviewer": "{{entity_id}}"}}}}})");
  ASSERT_EQ(rule.status, 201) << rule.body.dump();
  const Reply event = post("/v1/events", R"({"event_type": "interview_completed",
    "entity_type": "interviewer", "entity_id": "INT_100", "data": {"candidate": "C-7 \"Ada\""}})");
  ASSERT_EQ(event.status, 201) << event.body.dump();
  const long id = event.body["effects"][0]["reminder"]["id"];
  start_worker();
  EXPECT_EQ(outcome_of(id), "delivered");
  const ReceivedRequest r = only_request("/api/feedback");
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.headers.at("authorization"), std::string("Bearer ") + kTrackerToken);
  EXPECT_EQ(r.body, R"({"candidate": "C-7 \"Ada\"", "interviewer": "INT_100"})");
}

// Whoever may create a reminder or send an event chooses where it goes: a header sends a secret
// only to the hosts configured for it, whatever an event's data makes of a rule's target
// (explore29a #1: any write token sent every secret to a receiver of its own).
TEST_F(WebhookRecipes, AHeaderSendsASecretOnlyToItsHostsWhateverAnEventsDataSays) {
  const Reply rule = post("/v1/rules", R"({"name": "tell the tracker", "event_type": "due",
    "action": {"type": "remind", "reminder": {"event_type": "tracker", "channel": "webhook",
      "schedule_type": "one_time", "target": "{{data.url}}", "max_attempts": 1,
      "request": {"headers": {"Authorization": "Bearer {{secret.tracker}}"}}}}})");
  ASSERT_EQ(rule.status, 201) << rule.body.dump();
  const auto sent_to = [&](const std::string& who, const std::string& url) {
    const Reply event = post("/v1/events", json{{"event_type", "due"},
                                                {"entity_type", "t"},
                                                {"entity_id", who},
                                                {"data", {{"url", url}}}}
                                               .dump());
    EXPECT_EQ(event.status, 201) << event.body.dump();
    return event.body["effects"][0]["reminder"].value("id", 0L);
  };
  // The same receiver, by a name the secret's hosts do not list.
  std::string elsewhere = receiver_.url("/elsewhere");
  elsewhere.replace(elsewhere.find("127.0.0.1"), 9, "localhost");
  const long refused = sent_to("a", elsewhere);
  const long listed = sent_to("b", receiver_.url("/listed"));
  start_worker();
  EXPECT_EQ(outcome_of(listed), "delivered");
  EXPECT_EQ(outcome_of(refused), "failed");
  EXPECT_TRUE(receiver_.requests_to("/elsewhere").empty()) << "nothing was sent there";
  const std::string error = get("/v1/reminders/" + std::to_string(refused)).body["last_error"];
  EXPECT_EQ(error,
            "request.headers.Authorization: secret \"tracker\" may not be sent to localhost (a "
            "header sends a secret only to the hosts of [secret_hosts] tracker, "
            "NUDGE_SECRET_HOSTS_TRACKER)");
  EXPECT_EQ(logs().find(kTrackerToken), std::string::npos);
}

}  // namespace
}  // namespace nudge::test
