// Pause, resume, cancel and reschedule over HTTP; a flag set over HTTP stops a reminder under a
// running worker; SIGTERM stops the API cleanly.

#include <signal.h>

#include <array>
#include <vector>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using Lifecycle = ApiTest;

TEST_F(Lifecycle, TransitionsRepeatsAndImpossibleOnes) {
  const std::string r = "/v1/reminders/" + std::to_string(create_one("t"));
  EXPECT_EQ(post(r + "/pause").body["status"], "PAUSED");
  EXPECT_EQ(post(r + "/pause").status, 200);  // repeating a transition made is fine
  EXPECT_EQ(post(r + "/resume").body["status"], "ACTIVE");
  EXPECT_EQ(post(r + "/resume").status, 200);
  const auto cancelled = post(r + "/cancel");
  EXPECT_EQ(cancelled.body["status"], "CANCELLED");
  EXPECT_EQ(cancelled.body["completed_reason"], "cancelled");
  EXPECT_EQ(post(r + "/cancel").status, 200);
  const auto resume = post(r + "/resume");
  EXPECT_EQ(resume.status, 409);
  EXPECT_EQ(resume.body["error"]["code"], "conflict");
  EXPECT_EQ(post(r + "/pause").status, 409);
  EXPECT_EQ(patch(r, R"({"run_at":"2031-01-01T00:00:00Z"})").status, 409);
}

// Pause, resume, cancel and DELETE take no body: none, or {} (clients often send one), is
// fine; anything else is a 400 naming body, or the field, and changes nothing.
TEST_F(Lifecycle, RoutesWithoutABodyTakeNoneOrAnEmptyObjectAndRefuseAnythingElse) {
  const std::string r = "/v1/reminders/" + std::to_string(create_one("t"));
  for (const std::string action : {"/pause", "/resume", "/cancel"}) {
    SCOPED_TRACE(action);
    for (const auto& [body, field, code] :
         std::vector<std::array<std::string, 3>>{{"garbage", "body", "invalid_json"},
                                                 {"[]", "body", "invalid_type"},
                                                 {R"({"x": 1})", "x", "unknown_field"}}) {
      const auto refused = post(r + action, body);
      EXPECT_EQ(refused.status, 400) << body;
      EXPECT_EQ(refused.error_field(), field) << refused.body.dump();
      EXPECT_EQ(refused.body["error"]["code"], code) << refused.body.dump();
    }
    EXPECT_EQ(get(r).body["status"], action == "/resume" ? "PAUSED" : "ACTIVE");
    EXPECT_EQ(post(r + action, " { } ").status, 200);
    if (action != "/cancel") {
      EXPECT_EQ(post(r + action).status, 200);  // and with no body at all
    }
  }
  EXPECT_EQ(get(r).body["status"], "CANCELLED");

  ASSERT_EQ(put("/v1/contacts/u/1/email", R"({"address": "a@example.com"})").status, 201);
  EXPECT_EQ(send("DELETE", "/v1/contacts/u/1/email", "nope").error_field(), "body");
  EXPECT_EQ(send("DELETE", "/v1/contacts/u/1/email", "{}").status, 204);
  const auto rule = post("/v1/rules", R"({"name": "n", "event_type": "e", "action":
      {"type": "cancel", "cancel": {"event_type": "e"}}})");
  ASSERT_EQ(rule.status, 201) << rule.body.dump();
  const std::string one = "/v1/rules/" + std::to_string(rule.body["id"].get<long>());
  EXPECT_EQ(send("DELETE", one, R"({"cascade": true})").error_field(), "cascade");
  EXPECT_EQ(send("DELETE", one, "{}").status, 204);
}

TEST_F(Lifecycle, PatchReschedulesAndKeepsIdentity) {
  const auto created = post("/v1/reminders", R"({"entity_type":"u","entity_id":"p","event_type":"e",
      "channel":"log","schedule_type":"recurring","interval_seconds":60,"run_at":"2031-01-01T00:00:00Z"})");
  ASSERT_EQ(created.status, 201);
  const std::string r = "/v1/reminders/" + std::to_string(created.body["id"].get<long>());
  const auto changed = patch(r, R"({"run_at":"2032-06-01T12:00:00+02:00","interval_minutes":5,
      "payload":{"v":2},"max_fires":3,"ends_at":"2033-01-01T00:00:00Z"})");
  ASSERT_EQ(changed.status, 200) << changed.body.dump();
  EXPECT_EQ(changed.body["interval_seconds"], 300);
  EXPECT_EQ(changed.body["payload"]["v"], 2);
  EXPECT_EQ(changed.body["max_fires"], 3);
  EXPECT_EQ(changed.body["entity_id"], "p");
  EXPECT_EQ(value<std::string>("SELECT next_run_at::text FROM nudge.reminders"),
            "2032-06-01 10:00:00+00");
}

// A cron reminder's schedule is changed in place: its next fire is the new schedule's first
// occurrence from now, or at or after a run_at given with it (explore18b #8: cancelling and
// creating again were two calls, and creating the identity again kept the old schedule).
TEST_F(Lifecycle, PatchChangesACronSchedule) {
  const auto created = post("/v1/reminders", R"({"entity_type":"u","entity_id":"c","event_type":"e",
      "channel":"log","schedule_type":"cron","cron":"0 9 * * 1-5","timezone":"Europe/Berlin"})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const std::string r = "/v1/reminders/" + std::to_string(created.body["id"].get<long>());
  const auto changed = patch(r, R"({"cron":"30 7 * * *","timezone":"America/New_York"})");
  ASSERT_EQ(changed.status, 200) << changed.body.dump();
  EXPECT_EQ(changed.body["cron"], "30 7 * * *");
  EXPECT_EQ(changed.body["timezone"], "America/New_York");
  EXPECT_EQ(changed.body["schedule_text"], "every day at 07:30 (America/New_York)");
  EXPECT_TRUE(
      value<bool>("SELECT (next_run_at AT TIME ZONE 'America/New_York')::time = '07:30' "
                  "AND next_run_at BETWEEN now() AND now() + interval '1 day' "
                  "FROM nudge.reminders"));

  const auto later = patch(r, R"({"cron":"0 12 * * *","run_at":"2031-01-01T00:00:00Z"})");
  ASSERT_EQ(later.status, 200) << later.body.dump();
  EXPECT_EQ(later.body["next_run_at"], "2031-01-01T17:00:00+00:00") << later.body.dump();

  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"cron":"61 * * * *"})", "cron"},
           {R"({"cron":null})", "cron"},
           {R"({"timezone":"Mars/Olympus_Mons"})", "timezone"},
           {R"({"timezone":null})", "timezone"},
       }) {
    const auto refused = patch(r, body);
    EXPECT_EQ(refused.status, 400) << body;
    EXPECT_EQ(refused.error_field(), field) << body << " " << refused.body.dump();
  }
  EXPECT_EQ(get(r).body["cron"], "0 12 * * *");

  const auto every = post("/v1/reminders", R"({"entity_type":"u","entity_id":"r","event_type":"e",
      "channel":"log","schedule_type":"recurring","interval_seconds":60})");
  ASSERT_EQ(every.status, 201) << every.body.dump();
  const auto not_cron = patch("/v1/reminders/" + std::to_string(every.body["id"].get<long>()),
                              R"({"cron":"* * * * *"})");
  EXPECT_EQ(not_cron.status, 400);
  EXPECT_EQ(not_cron.error_field(), "cron") << not_cron.body.dump();
}

// null removes a limit (JSON merge patch); what every live reminder has cannot be removed.
TEST_F(Lifecycle, PatchWithNullRemovesALimitAndOnlyALimit) {
  const auto created = post("/v1/reminders", R"({"entity_type":"u","entity_id":"p","event_type":"e",
      "channel":"log","schedule_type":"recurring","interval_seconds":60,"max_fires":3,
      "run_at":"2031-01-01T00:00:00Z","ends_at":"2031-02-01T00:00:00Z","payload":{"v":1}})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const std::string r = "/v1/reminders/" + std::to_string(created.body["id"].get<long>());

  for (const char* kept : {"run_at", "interval_seconds", "interval_minutes", "payload"}) {
    const auto refused = patch(r, std::string(R"({")") + kept + R"(": null})");
    EXPECT_EQ(refused.status, 400) << kept;
    EXPECT_EQ(refused.error_field(), kept) << refused.body.dump();
  }
  EXPECT_EQ(get(r).body["max_fires"], 3);

  // An end moved past the old one is taken once the old end is removed in the same PATCH.
  const auto no_end = patch(r, R"({"ends_at": null, "run_at": "2031-06-01T00:00:00Z"})");
  ASSERT_EQ(no_end.status, 200) << no_end.body.dump();
  EXPECT_FALSE(no_end.body.contains("ends_at")) << no_end.body.dump();
  EXPECT_EQ(no_end.body["max_fires"], 3);
  const auto no_limit = patch(r, R"({"max_fires": null})");
  ASSERT_EQ(no_limit.status, 200) << no_limit.body.dump();
  EXPECT_FALSE(no_limit.body.contains("max_fires")) << no_limit.body.dump();
  EXPECT_EQ(no_limit.body["payload"]["v"], 1);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE max_fires IS NULL "
                        "AND ends_at IS NULL AND status = 'ACTIVE'"),
            1);
  // Removing what is not there is no error: the answer is the reminder as it is.
  EXPECT_EQ(patch(r, R"({"max_fires": null})").status, 200);
}

TEST_F(Lifecycle, FlagSetOverRestStopsARunningReminderEndToEnd) {
  ChildProcess worker({program("nudge-worker")},
                      {{"NUDGE_DATABASE_URL", db_.url()}, {"NUDGE_WORKER_IDLE_CAP_SECONDS", "300"}},
                      (log_.string() + ".worker"));
  const auto created = post("/v1/reminders", R"({"entity_type":"interviewer","entity_id":"INT_7",
      "event_type":"feedback_form","channel":"log","schedule_type":"recurring","interval_seconds":1,
      "stop_condition_type":"db_check","stop_condition_value":"feedback_7"})");
  ASSERT_EQ(created.status, 201);
  const std::string r = "/v1/reminders/" + std::to_string(created.body["id"].get<long>());
  ASSERT_TRUE(wait_until(60s, [&] { return get(r).body["fire_count"].get<int>() >= 2; }))
      << worker.log();

  ASSERT_EQ(put("/v1/flags/feedback_7", R"({"value": true})").status, 200);
  const auto stopped = get(r);
  EXPECT_EQ(stopped.body["status"], "COMPLETED");
  EXPECT_EQ(stopped.body["completed_reason"], "stop_condition");
  const long fired = stopped.body["fire_count"];
  std::this_thread::sleep_for(2500ms);  // two more periods: nothing more fires
  EXPECT_EQ(get(r).body["fire_count"], fired);
  EXPECT_EQ(get(r + "/executions?limit=500").body["items"].size(), static_cast<std::size_t>(fired));
  worker.remove_logs();
}

TEST_F(Lifecycle, ReminderCreatedOverRestWakesASleepingWorkerAtOnce) {
  // The API's transactions do not NOTIFY; it sends the hint after commit (api/notifier.cpp).
  ChildProcess worker({program("nudge-worker")},
                      {{"NUDGE_DATABASE_URL", db_.url()}, {"NUDGE_WORKER_IDLE_CAP_SECONDS", "300"}},
                      (log_.string() + ".sleeper"));
  ASSERT_TRUE(wait_until(60s, [&] {  // asleep: its last statement asked when work is due
    return value<long>(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
               "AND state = 'idle' AND query LIKE '%nudge.seconds_until_due%'") >= 2;
  })) << worker.log();
  const auto created =
      post("/v1/reminders", R"({"entity_type":"u","entity_id":"now","event_type":"e",
      "channel":"log","schedule_type":"one_time","run_at":"2020-01-01T00:00:00Z"})");
  ASSERT_EQ(created.status, 201);
  EXPECT_TRUE(wait_until(10s, [&] {
    return value<long>("SELECT count(*) FROM nudge.executions") == 1;
  })) << worker.log();
  worker.remove_logs();
}

TEST_F(Lifecycle, CronReminderFiresAndMovesToItsNextOccurrence) {
  ChildProcess worker({program("nudge-worker")},
                      {{"NUDGE_DATABASE_URL", db_.url()}, {"NUDGE_WORKER_IDLE_CAP_SECONDS", "300"}},
                      (log_.string() + ".cron"));
  // run_at an hour ago: its first occurrence is already due, so it fires at once.
  const auto created = post("/v1/reminders", R"({"entity_type":"team","entity_id":"ops",
      "event_type":"standup","channel":"log","schedule_type":"cron","cron":"* * * * *",
      "timezone":"Europe/Berlin","run_at":"2020-01-01T00:00:00Z"})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(created.body["cron"], "* * * * *");
  EXPECT_EQ(created.body["timezone"], "Europe/Berlin");
  const std::string r = "/v1/reminders/" + std::to_string(created.body["id"].get<long>());
  ASSERT_TRUE(wait_until(60s, [&] { return get(r).body["fire_count"].get<int>() >= 1; }))
      << worker.log();
  // Moved to the next whole minute after the fire, still ACTIVE.
  EXPECT_EQ(get(r).body["status"], "ACTIVE");
  EXPECT_TRUE(value<bool>(
      "SELECT next_run_at > now() - interval '1 second' AND next_run_at <= now() + interval "
      "'61 seconds' AND date_trunc('minute', next_run_at) = next_run_at FROM nudge.reminders"));
  const auto bad = post("/v1/reminders", R"({"entity_type":"team","entity_id":"x",
      "event_type":"e","channel":"log","schedule_type":"cron","cron":"61 * * * *"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.error_field(), "cron");
  worker.remove_logs();
}

TEST_F(Lifecycle, SigtermStopsTheApiCleanly) {
  create_one("before");
  api_->signal(SIGTERM);
  EXPECT_EQ(api_->wait(30s), 0) << api_->log();
}

TEST_F(Lifecycle, HealthAndReadiness) {
  EXPECT_EQ(get("/health").status, 200);
  EXPECT_EQ(get("/ready").body["status"], "ready");
}

}  // namespace
}  // namespace nudge::test
