// Retries are decided in the database: a failed attempt keeps its occurrence and waits a
// jittered, capped backoff; when attempts run out a one_time reminder is FAILED and a recurring
// one records the occurrence as failed and moves on. executions gets one row per occurrence,
// delivery_attempts one per attempt, whatever the order of events.

#include <algorithm>
#include <set>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using nlohmann::json;

// Lease 30 s, 3 attempts, backoff base 100 ms capped at 250 ms, threshold 60 s, cap 100.
constexpr Policy kFastRetries{30, 3, 100, 250, 60, 100};

class RetryTest : public LifecycleTest {
 protected:
  // One worker round trip with fast retries: finish `done` with `outcome` (status 503 when it
  // failed, else 200), claim up to `limit`.
  std::vector<Claimed> round(const std::string& worker, const std::vector<Claimed>& done,
                             const std::string& outcome, int limit = 100,
                             const std::optional<std::string>& error = "HTTP 503") {
    FinishArrays a = finish_arrays(done, outcome, error);
    a.status_codes =
        pg_array(std::vector<std::optional<int>>(done.size(), outcome == "failed" ? 503 : 200));
    return LifecycleTest::round(worker, a, limit, kFastRetries);
  }
  // Makes a waiting retry due now.
  void retry_now(std::int64_t id) {
    sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond' WHERE id = $1",
        id);
  }
  // From the finish (its transaction's now(), which it also wrote to updated_at) to the retry:
  // measured against the test's own clock, a loaded machine made it look early.
  double backoff_of(std::int64_t id) {
    return value<double>(
        "SELECT extract(epoch FROM next_run_at - updated_at)::float8 FROM nudge.reminders"
        " WHERE id = $1",
        id);
  }
  // The reminder's history as REST lists it (nudge.reminder_executions), newest first.
  json history(std::int64_t id) {
    return json::parse(value<std::string>(
        "SELECT coalesce(jsonb_agg(execution ORDER BY scheduled_for DESC), '[]')::text "
        "FROM nudge.reminder_executions($1)",
        id));
  }
  long attempts_of(std::int64_t id) {
    return value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE reminder_id = $1", id);
  }
};

TEST_F(RetryTest, AFailedAttemptWaitsABackoffAndRetriesTheSameOccurrence) {
  const std::int64_t id =
      create(
          "p_entity_type => 'user', p_entity_id => 'u1', p_event_type => 'nudge',"
          " p_channel => 'webhook', p_target => 'https://hooks.example.com/n',"
          " p_schedule_type => 'one_time', p_run_at => " +
          kDue)
          .second;
  const auto first = round("w1", {}, "delivered");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].attempt, 1);

  EXPECT_TRUE(round("w1", first, "failed").empty()) << "the retry is not due yet";
  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "ACTIVE");
  EXPECT_EQ(r["attempt"].as<int>(), 1);
  EXPECT_EQ(r["last_error"].as<std::string>(), "HTTP 503");
  EXPECT_TRUE(r["leased_by"].is_null());
  EXPECT_TRUE(
      value<bool>("SELECT occurrence_at = $2::timestamptz FROM nudge.reminders WHERE id = $1", id,
                  first[0].scheduled_for));
  const double backoff = backoff_of(id);
  EXPECT_GE(backoff, 0.0);
  EXPECT_LE(backoff, 0.1) << "attempt 1 backs off at most base = 100 ms";
  EXPECT_EQ(executions_of(id), 0) << "the occurrence has not ended";
  EXPECT_EQ(attempts_of(id), 1);

  retry_now(id);
  const auto second = round("w1", {}, "delivered");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].scheduled_for, first[0].scheduled_for) << "same occurrence, same key";
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_TRUE(round("w1", second, "delivered", 0).empty());

  EXPECT_EQ(status(id), "COMPLETED");
  const pqxx::row e = sql("SELECT * FROM nudge.executions WHERE reminder_id = $1", id).at(0);
  EXPECT_EQ(e["outcome"].as<std::string>(), "delivered");
  EXPECT_EQ(e["attempts"].as<int>(), 2);
  const pqxx::result attempts =
      sql("SELECT attempt, outcome, status_code FROM nudge.delivery_attempts WHERE reminder_id = $1"
          " ORDER BY attempt",
          id);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0][1].as<std::string>(), "failed");
  EXPECT_EQ(attempts[0][2].as<int>(), 503);
  EXPECT_EQ(attempts[1][1].as<std::string>(), "delivered");
  EXPECT_EQ(attempts[1][2].as<int>(), 200);
}

TEST_F(RetryTest, ALogLineWrittenNeedsNoAttemptRowButAFailedOneDoes) {
  const std::int64_t ok = create_one_time("ok");
  const std::int64_t bad = create_one_time("bad", kDue, kOneAttempt);
  const auto fires = round("w1", {}, "delivered");
  ASSERT_EQ(fires.size(), 2u);
  for (const auto& f : fires) round("w1", {f}, f.id == ok ? "delivered" : "failed", 0);
  EXPECT_EQ(attempts_of(ok), 0) << "executions tells the whole story of a log line";
  EXPECT_EQ(attempts_of(bad), 1);
  EXPECT_EQ(executions_of(ok), 1);
  EXPECT_EQ(executions_of(bad), 1);
}

TEST_F(RetryTest, OneTimeReminderFailsWhenItsAttemptsRunOut) {
  const std::int64_t id = create_one_time("u1");
  std::string occurrence;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    retry_now(id);
    const auto fires = round("w1", {}, "delivered");
    ASSERT_EQ(fires.size(), 1u);
    EXPECT_EQ(fires[0].attempt, attempt);
    if (attempt == 1) occurrence = fires[0].scheduled_for;
    EXPECT_EQ(fires[0].scheduled_for, occurrence);
    round("w1", fires, "failed", 0);
    EXPECT_EQ(status(id), attempt < 3 ? "ACTIVE" : "FAILED");
  }
  EXPECT_EQ(reason(id), "attempts_exhausted");
  EXPECT_EQ(reminder(id)["last_error"].as<std::string>(), "HTTP 503");
  const pqxx::row e = sql("SELECT * FROM nudge.executions WHERE reminder_id = $1", id).at(0);
  EXPECT_EQ(e["outcome"].as<std::string>(), "failed");
  EXPECT_EQ(e["attempts"].as<int>(), 3);
  EXPECT_EQ(attempts_of(id), 3);
  retry_now(id);
  EXPECT_TRUE(round("w1", {}, "delivered").empty()) << "FAILED is terminal";
}

TEST_F(RetryTest, RecurringReminderRecordsTheFailedOccurrenceAndMovesOn) {
  const std::int64_t id = create_recurring("u1", 3600, kDue, ", p_max_attempts => 2");
  auto fires = round("w1", {}, "delivered");
  ASSERT_EQ(fires.size(), 1u);
  const std::string occurrence = fires[0].scheduled_for;
  round("w1", fires, "failed", 0);
  retry_now(id);
  fires = round("w1", {}, "delivered");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].attempt, 2);
  round("w1", fires, "failed", 0);

  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "ACTIVE");
  EXPECT_EQ(r["attempt"].as<int>(), 0);
  EXPECT_TRUE(r["occurrence_at"].is_null());
  EXPECT_EQ(r["fire_count"].as<int>(), 1);
  EXPECT_TRUE(value<bool>(
      "SELECT next_run_at = $2::timestamptz + interval '1 hour' FROM nudge.reminders WHERE id = $1",
      id, occurrence))
      << "the next occurrence keeps the schedule's phase, not the retry's";
  const pqxx::row e = sql("SELECT * FROM nudge.executions WHERE reminder_id = $1", id).at(0);
  EXPECT_EQ(e["outcome"].as<std::string>(), "failed");
  EXPECT_EQ(e["attempts"].as<int>(), 2);
}

// A refusal that trying again cannot change (the worker's 'rejected': an SMTP 5xx) ends its
// occurrence at once, recorded as failed: a relay refused the same message max_attempts times
// (explore15a #4). One time: FAILED; recurring: the next occurrence, on its schedule.
TEST_F(RetryTest, ARejectedAttemptEndsItsOccurrenceAtOnce) {
  const std::int64_t once = create_one_time("u1");
  const std::int64_t every = create_recurring("u2", 3600, kDue);
  const auto fires = round("w1", {}, "delivered");
  ASSERT_EQ(fires.size(), 2u);
  round("w1", fires, "rejected", 0);

  EXPECT_EQ(status(once), "FAILED");
  EXPECT_EQ(reason(once), "attempts_exhausted");
  const pqxx::row r = reminder(every);
  EXPECT_EQ(r["status"].as<std::string>(), "ACTIVE");
  EXPECT_EQ(r["attempt"].as<int>(), 0);
  EXPECT_TRUE(r["occurrence_at"].is_null());
  EXPECT_TRUE(r["max_attempts"].is_null()) << "the reminder's own budget is left as it was";
  for (const std::int64_t id : {once, every}) {
    const pqxx::row e = sql("SELECT * FROM nudge.executions WHERE reminder_id = $1", id).at(0);
    EXPECT_EQ(e["outcome"].as<std::string>(), "failed");
    EXPECT_EQ(e["attempts"].as<int>(), 1);
    EXPECT_EQ(
        value<std::string>(
            "SELECT string_agg(outcome, ',') FROM nudge.delivery_attempts WHERE reminder_id = $1",
            id),
        "failed");
  }
}

TEST_F(RetryTest, TheReminderAttemptBudgetOverridesTheWorkers) {
  const std::int64_t one = create_one_time("one", kDue, kOneAttempt);
  const std::int64_t five = create_one_time("five", kDue, ", p_max_attempts => 5");
  const std::int64_t dflt = create_one_time("default");
  std::map<std::int64_t, int> failures;
  for (int turn = 0; turn < 8; ++turn) {
    for (const std::int64_t id : {one, five, dflt}) retry_now(id);
    const auto fires = round("w1", {}, "delivered");
    for (const auto& f : fires) ++failures[f.id];
    round("w1", fires, "failed", 0);
  }
  EXPECT_EQ(failures[one], 1);
  EXPECT_EQ(failures[five], 5);
  EXPECT_EQ(failures[dflt], 3) << "the policy's max_attempts";
  for (const std::int64_t id : {one, five, dflt}) EXPECT_EQ(status(id), "FAILED");
}

TEST_F(RetryTest, BackoffIsFullJitterUnderTheCappedExponential) {
  // 40 reminders fail attempt n; each waits in [0, min(250, 100 * 2^(n-1))] ms.
  for (int i = 0; i < 40; ++i) create_one_time("u" + std::to_string(i));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 millisecond'");
    const auto fires = round("w1", {}, "delivered");
    ASSERT_EQ(fires.size(), 40u);
    if (attempt == 3) break;  // the third failure would be final
    round("w1", fires, "failed", 0);
    const double bound = std::min(0.250, 0.100 * (1 << (attempt - 1)));
    const pqxx::result waits =
        sql("SELECT extract(epoch FROM next_run_at - updated_at)::float8 FROM nudge.reminders");
    std::set<long> distinct;
    for (const auto& w : waits) {
      const double s = w[0].as<double>();
      EXPECT_GE(s, 0.0);
      EXPECT_LE(s, bound + 1e-6) << "attempt " << attempt;
      distinct.insert(static_cast<long>(s * 1e6));
    }
    EXPECT_GT(distinct.size(), 30u) << "delays are jittered, not all alike";
  }
}

TEST_F(RetryTest, AnAttemptWhoseLeaseWasTakenOverIsNotRecorded) {
  const std::int64_t id = create_one_time("u1");
  const auto a = round("wA", {}, "delivered");
  ASSERT_EQ(a.size(), 1u);
  sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
      id);
  const auto b = round("wB", {}, "delivered");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].attempt, 2);

  round("wA", a, "failed", 0);  // too late: wB holds attempt 2
  EXPECT_EQ(attempts_of(id), 0);
  EXPECT_EQ(reminder(id)["leased_by"].as<std::string>(), "wB");
  round("wB", b, "delivered", 0);
  EXPECT_EQ(status(id), "COMPLETED");
  EXPECT_EQ(value<int>("SELECT attempts FROM nudge.executions WHERE reminder_id = $1", id), 2);
}

TEST_F(RetryTest, AttemptsUsedUpByCrashedWorkersEndTheOccurrenceAsFailed) {
  const std::int64_t id = create_one_time("u1");
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const auto fires = round("w" + std::to_string(attempt), {}, "delivered");
    ASSERT_EQ(fires.size(), 1u);
    EXPECT_EQ(fires[0].attempt, attempt);
    // The worker dies holding it; its lease runs out.
    sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        id);
  }
  EXPECT_TRUE(round("w4", {}, "delivered").empty());
  EXPECT_EQ(status(id), "FAILED");
  const pqxx::row e = sql("SELECT * FROM nudge.executions WHERE reminder_id = $1", id).at(0);
  EXPECT_EQ(e["outcome"].as<std::string>(), "failed");
  EXPECT_NE(e["error"].as<std::string>().find("abandoned"), std::string::npos);
}

TEST_F(RetryTest, PauseCancelAndStopFlagsApplyToAWaitingRetryAndItsHistorySaysSo) {
  const std::int64_t paused = create_one_time("paused");
  const std::int64_t cancelled = create_one_time("cancelled");
  const std::int64_t stopped = create_one_time("stopped", kDue, stop_on("done"));
  const auto fires = round("w1", {}, "delivered");
  ASSERT_EQ(fires.size(), 3u);
  round("w1", fires, "failed", 0);
  // The history lists an occurrence with attempts but no ending: while it is retried...
  for (const std::int64_t id : {paused, cancelled, stopped}) {
    const json h = history(id);
    ASSERT_EQ(h.size(), 1u) << h.dump();
    EXPECT_EQ(h[0]["outcome"], "retrying");
    EXPECT_EQ(h[0]["attempts"], 1);
    EXPECT_EQ(h[0]["error"], "HTTP 503");
    EXPECT_EQ(h[0]["worker"], "w1");
    EXPECT_FALSE(h[0].contains("fired_at")) << "it has not ended";
    ASSERT_EQ(h[0]["delivery_attempts"].size(), 1u);
    EXPECT_EQ(h[0]["delivery_attempts"][0]["status_code"], 503);
  }

  sql("SELECT nudge.pause_reminder($1)", paused);
  sql("SELECT nudge.cancel_reminder($1)", cancelled);
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('done', true)");
  // ... and once a cancel or a stop flag left it unfinished (a paused reminder resumes it).
  EXPECT_EQ(history(paused)[0]["outcome"], "retrying");
  EXPECT_EQ(history(cancelled)[0]["outcome"], "unfinished");
  EXPECT_EQ(history(stopped)[0]["outcome"], "unfinished");
  for (const std::int64_t id : {paused, cancelled, stopped}) retry_now(id);
  EXPECT_TRUE(round("w1", {}, "delivered").empty());
  EXPECT_EQ(status(paused), "PAUSED");
  EXPECT_EQ(status(cancelled), "CANCELLED");
  EXPECT_EQ(status(stopped), "COMPLETED");
  EXPECT_EQ(reason(stopped), "stop_condition");

  // Resumed, the paused one retries the occurrence it was on.
  sql("SELECT nudge.resume_reminder($1)", paused);
  const auto again = round("w1", {}, "delivered");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, paused);
  EXPECT_EQ(again[0].attempt, 2);
  const auto first_paused =
      std::find_if(fires.begin(), fires.end(), [&](const Claimed& c) { return c.id == paused; });
  EXPECT_EQ(again[0].scheduled_for, first_paused->scheduled_for);
  round("w1", again, "delivered", 0);
  const json ended = history(paused);
  ASSERT_EQ(ended.size(), 1u) << ended.dump();
  EXPECT_EQ(ended[0]["outcome"], "delivered");
  EXPECT_EQ(ended[0]["attempts"], 2);
  EXPECT_TRUE(ended[0]["fired_at"].is_string());
  // A log line written has no attempt row (the execution tells all there is).
  EXPECT_EQ(ended[0]["delivery_attempts"].size(), 1u);
}

// Pages of the history hold ended and unfinished occurrences in one order, none twice or lost.
TEST_F(RetryTest, HistoryPagesInterleaveEndedAndUnfinishedOccurrences) {
  const std::int64_t id = create_one_time("u1");
  for (const char* at : {"2030-01-01T00:01:00Z", "2030-01-01T00:03:00Z", "2030-01-01T00:05:00Z"})
    sql("INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker) "
        "VALUES ($1, $2, 'delivered', 1, 'w')",
        id, at);
  for (const char* at : {"2030-01-01T00:00:00Z", "2030-01-01T00:04:00Z"})
    sql("INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, worker)"
        " VALUES ($1, $2, 1, 'failed', 'w')",
        id, at);
  std::vector<std::string> seen;
  std::optional<std::string> before;
  for (int page = 0; page < 5; ++page) {
    const pqxx::result rows =
        sql("SELECT execution->>'outcome', to_char(scheduled_for AT TIME ZONE 'UTC', 'HH24:MI') "
            "FROM nudge.reminder_executions($1, $2::timestamptz, 2)",
            id, before);
    for (const auto& row : rows)
      seen.push_back(row[1].as<std::string>() + " " + row[0].as<std::string>());
    if (rows.size() < 2) break;
    before = sql("SELECT scheduled_for::text FROM nudge.reminder_executions($1, $2::timestamptz, 2)"
                 " ORDER BY scheduled_for LIMIT 1",
                 id, before)
                 .at(0)[0]
                 .as<std::string>();
  }
  EXPECT_EQ(seen,
            (std::vector<std::string>{"00:05 delivered", "00:04 unfinished", "00:03 delivered",
                                      "00:01 delivered", "00:00 unfinished"}));
}

TEST_F(RetryTest, ACancelDuringDeliveryEndsTheOccurrenceWithoutRetry) {
  const std::int64_t id = create_one_time("u1");
  const auto fires = round("w1", {}, "delivered");
  ASSERT_EQ(fires.size(), 1u);
  sql("SELECT nudge.cancel_reminder($1)", id);
  round("w1", fires, "failed", 0);
  EXPECT_EQ(status(id), "CANCELLED");
  EXPECT_TRUE(reminder(id)["occurrence_at"].is_null());
  EXPECT_EQ(value<std::string>("SELECT outcome FROM nudge.executions WHERE reminder_id = $1", id),
            "failed");
}

TEST_F(RetryTest, ClaimsResolveTheAddressFromContactsAtEachFire) {
  const std::int64_t id =
      create(
          "p_entity_type => 'interviewer', p_entity_id => 'INT_100', p_event_type => 'feedback',"
          " p_channel => 'email', p_schedule_type => 'recurring', p_interval_seconds => 60,"
          " p_run_at => " +
          kDue)
          .second;
  auto target_of_next_claim = [&]() -> std::optional<std::string> {
    sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 second' WHERE id = $1", id);
    pqxx::work tx(conn_);
    const pqxx::result rows = exec_claim(tx, "w1", 10, kFastRetries);
    tx.commit();
    EXPECT_EQ(rows.size(), 1u);
    if (rows.empty()) return std::nullopt;
    sql("UPDATE nudge.reminders SET leased_by = NULL, lease_expires_at = NULL, attempt = 0");
    if (rows[0]["target"].is_null()) return std::nullopt;
    return rows[0]["target"].as<std::string>();
  };
  EXPECT_EQ(target_of_next_claim(), std::nullopt);
  sql("SELECT nudge.put_contact('interviewer', 'INT_100', 'email', 'ann@example.com')");
  EXPECT_EQ(target_of_next_claim(), "ann@example.com");
  exec_as_user("UPDATE nudge.contacts SET address = 'bob@example.com' WHERE entity_id = 'INT_100'");
  EXPECT_EQ(target_of_next_claim(), "bob@example.com");
  // A webhook address of the same entity is not an email address.
  sql("SELECT nudge.put_contact('interviewer', 'INT_100', 'webhook', "
      "'https://hooks.example.com/x')");
  EXPECT_EQ(target_of_next_claim(), "bob@example.com");
}

TEST_F(RetryTest, TargetsAndContactsAreCheckedForTheirChannel) {
  struct Case {
    const char* channel;
    const char* target;
    bool ok;
  };
  const Case cases[] = {
      {"webhook", "https://hooks.example.com/nudge?x=1", true},
      {"webhook", "http://127.0.0.1:8080/h", true},
      {"webhook", "http://[::1]:8080/h", true},
      {"webhook", "ftp://example.com/x", false},
      {"webhook", "https://exa mple.com/", false},
      {"webhook", "hooks.example.com", false},
      {"webhook", "https://<script>a", false},
      {"webhook", "https://user:pw@hooks.example.com:8443/x", true},
      {"email", "ann@example.com", true},
      {"email", "ann.lee+tag@mail.example.co.uk", true},
      {"email", "ann@localhost", false},
      {"email", "Ann <ann@example.com>", false},
      {"email", "ann@example.com\r\nBcc: x@y.z", false},
      {"email", "not-an-address", false},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.channel) + " " + c.target);
    const std::string args = "p_entity_type => 'user', p_entity_id => 'u" + std::to_string(n++) +
                             "', p_event_type => 'e', p_channel => '" + c.channel +
                             "', p_schedule_type => 'one_time', p_run_at => now(), p_target => $1";
    const SqlFailure f = failure_of("SELECT * FROM nudge.create_reminder(" + args + ")", c.target);
    if (c.ok) {
      EXPECT_EQ(f.sqlstate, "") << f.message;
    } else {
      EXPECT_EQ(f.sqlstate, "22023");
      EXPECT_EQ(f.message.rfind("target: must be", 0), 0u) << f.message;
    }
    const SqlFailure contact =
        failure_of("SELECT nudge.put_contact('user', 'c', $1, $2)", c.channel, c.target);
    if (c.ok) {
      EXPECT_EQ(contact.sqlstate, "") << contact.message;
    } else {
      EXPECT_EQ(contact.sqlstate, "22023");
      EXPECT_EQ(contact.message.rfind("address: must be", 0), 0u) << contact.message;
    }
  }
  // A log reminder is written to the worker's log: a target would only be ignored.
  const SqlFailure log = failure_of(
      "SELECT * FROM nudge.create_reminder(p_entity_type => 'user', p_entity_id => 'l', "
      "p_event_type => 'e', p_channel => 'log', p_schedule_type => 'one_time', p_run_at => now(), "
      "p_target => 'anything at all')");
  EXPECT_EQ(log.sqlstate, "22023");
  EXPECT_EQ(log.message, "target: a log reminder has no target (its fires go to the worker's log)");
}

}  // namespace
}  // namespace nudge::test
