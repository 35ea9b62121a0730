// The interviewer flow of the README end to end, over HTTP with a running worker: an event
// starts the nagging, another stops it; after three unanswered nags the manager is reminded, once
// per overdue interview.

#include <thread>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

class EventsFlow : public ApiTest {
 protected:
  void SetUp() override {
    worker_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{program("nudge-worker")},
        std::map<std::string, std::string>{{"NUDGE_DATABASE_URL", db_.url()},
                                           {"NUDGE_WORKER_IDLE_CAP_SECONDS", "300"}},
        log_.string() + ".worker");
    // Nag every `kEvery` seconds, 3 times at most, until feedback_submitted:<entity> is true.
    add_rule(R"({"name": "nag", "event_type": "interview_completed", "action": {"type": "remind",
      "reminder": {"event_type": "feedback_form", "channel": "log", "schedule_type": "recurring",
      "interval_seconds": 2, "delay_seconds": 0, "max_fires": 3, "stop_condition_type": "db_check",
      "stop_condition_value": "feedback_submitted:{{entity_id}}",
      "payload": {"manager_id": "{{data.manager_id}}"}}}})");
    add_rule(R"({"name": "stop", "event_type": "feedback_submitted", "action": {"type": "set_flag",
      "flag": {"key": "feedback_submitted:{{entity_id}}", "value": true}}})");
    add_rule(R"({"name": "escalate", "event_type": "nudge.reminder_completed",
      "when": {"data.reason": "max_fires", "data.reminder.event_type": "feedback_form"},
      "action": {"type": "remind", "reminder": {"event_type": "feedback_escalation",
      "payload": {"manager_id": "{{data.reminder.payload.manager_id}}"}, "channel": "log", "schedule_type": "recurring", "interval_seconds": 2, "delay_seconds": 0,
      "stop_condition_type": "db_check",
      "stop_condition_value": "{{data.reminder.stop_condition_value}}"}}})");
  }
  void TearDown() override {
    if (!HasFailure()) worker_->remove_logs();
  }
  void add_rule(const std::string& body) {
    const auto r = post("/v1/rules", body);
    ASSERT_EQ(r.status, 201) << r.body.dump();
  }
  void event(const std::string& event_type, const std::string& entity_id) {
    const auto r = post("/v1/events", R"({"event_type": ")" + event_type +
                                          R"(", "entity_type": "interviewer", "entity_id": ")" +
                                          entity_id + R"(", "data": {"manager_id": "MGR_1"}})");
    ASSERT_EQ(r.status, 201) << r.body.dump();
  }
  long fires(const std::string& event_type) {
    return value<long>(
        "SELECT count(*) FROM nudge.executions e JOIN nudge.reminders r ON r.id = e.reminder_id "
        "WHERE r.event_type = $1",
        event_type);
  }
  std::string status_of(const std::string& event_type) {
    return value<std::string>(
        "SELECT status || '/' || coalesce(completed_reason, '-') FROM nudge.reminders "
        "WHERE event_type = $1",
        event_type);
  }
  std::unique_ptr<ChildProcess> worker_;
};

TEST_F(EventsFlow, TheStartEventNagsAndTheStopEventEndsItWithNoFireAfterTheStop) {
  event("interview_completed", "INT_1");
  ASSERT_TRUE(wait_until(60s, [&] { return fires("feedback_form") >= 1; })) << worker_->log();
  event("feedback_submitted", "INT_1");
  EXPECT_EQ(status_of("feedback_form"), "COMPLETED/stop_condition");
  const long fired = fires("feedback_form");
  std::this_thread::sleep_for(4500ms);  // two more periods: nothing more fires
  EXPECT_EQ(fires("feedback_form"), fired);
  EXPECT_EQ(
      value<long>("SELECT count(*) FROM nudge.executions e, nudge.status_flags f "
                  "WHERE f.key = 'feedback_submitted:INT_1' AND e.scheduled_for > f.updated_at"),
      0)
      << "no occurrence after the stop committed fired";
  EXPECT_EQ(
      value<long>("SELECT count(*) FROM nudge.reminders WHERE event_type = 'feedback_escalation'"),
      0);
}

// Two interviews of one manager, both unanswered: two escalations, each ended by its own feedback.
TEST_F(EventsFlow, ThreeUnansweredNagsRemindTheManagerUntilTheFeedbackIsIn) {
  event("interview_completed", "INT_2");
  event("interview_completed", "INT_4");
  ASSERT_TRUE(wait_until(60s, [&] {
    return value<long>(
               "SELECT count(DISTINCT r.entity_id) FROM nudge.executions e JOIN "
               "nudge.reminders r ON r.id = e.reminder_id "
               "WHERE r.event_type = 'feedback_escalation'") == 2;
  })) << worker_->log();
  EXPECT_EQ(fires("feedback_form"), 6);
  EXPECT_EQ(
      value<std::string>("SELECT string_agg(entity_id || ' ' || status || '/' || "
                         "coalesce(completed_reason, '-') || ' ' || (payload->>'manager_id'), ', ' "
                         "ORDER BY entity_id, id) FROM nudge.reminders "
                         "WHERE event_type IN ('feedback_form', 'feedback_escalation')"),
      "INT_2 COMPLETED/max_fires MGR_1, INT_2 ACTIVE/- MGR_1, INT_4 COMPLETED/max_fires MGR_1, "
      "INT_4 ACTIVE/- MGR_1");
  event("feedback_submitted", "INT_2");
  EXPECT_EQ(value<std::string>("SELECT string_agg(entity_id || ' ' || status, ', ' ORDER BY "
                               "entity_id) FROM nudge.reminders WHERE event_type = "
                               "'feedback_escalation'"),
            "INT_2 COMPLETED, INT_4 ACTIVE");
}

TEST_F(EventsFlow, FeedbackAfterTheSecondNagMeansNoEscalation) {
  event("interview_completed", "INT_3");
  ASSERT_TRUE(wait_until(
      60s, [&] { return fires("feedback_form") >= 2; }, 5ms))
      << worker_->log();
  event("feedback_submitted", "INT_3");
  ASSERT_EQ(fires("feedback_form"), 2) << "the third nag came before the feedback: too slow a box";
  std::this_thread::sleep_for(4500ms);  // past the third nag's time: nothing more happens
  EXPECT_EQ(fires("feedback_form"), 2);
  EXPECT_EQ(status_of("feedback_form"), "COMPLETED/stop_condition");
  EXPECT_EQ(
      value<long>("SELECT count(*) FROM nudge.reminders WHERE event_type = 'feedback_escalation'"),
      0);
}

}  // namespace
}  // namespace nudge::test
