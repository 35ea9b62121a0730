// Claim and finish, driven exactly as the worker drives them: one_time fires once, recurring
// moves to its next occurrence on its original phase, max_fires and ends_at complete it.

#include <set>
#include <string>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class ClaimFinishTest : public LifecycleTest {
 protected:
  // Moves a reminder's next occurrence `hours_ago` hours into the past (simulated time passing);
  // every test uses a different number of hours per occurrence, so occurrences stay distinct.
  void make_due(std::int64_t id, int hours_ago) {
    sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 hour' * $2 WHERE id = $1", id,
        hours_ago);
  }
  // One full worker cycle for a single due reminder; the fire it handled.
  Claimed fire_once(const std::string& worker, std::int64_t id) {
    const auto fires = claim(worker);
    EXPECT_EQ(fires.size(), 1u);
    if (fires.size() != 1u) return {};
    EXPECT_EQ(fires[0].id, id);
    EXPECT_TRUE(finish_and_claim(worker, fires, 0).empty());
    return fires[0];
  }
  void expect_unleased(std::int64_t id) {
    const pqxx::row r = reminder(id);
    EXPECT_TRUE(r["leased_by"].is_null());
    EXPECT_TRUE(r["lease_expires_at"].is_null());
    EXPECT_EQ(r["attempt"].as<int>(), 0);
  }
};

// A claim leases no more webhooks and emails than the worker has free slots, however many log
// lines it takes: a crash charges an attempt only to deliveries under way. The rest stay due,
// untouched, for the next claim (this worker's or another's).
TEST_F(ClaimFinishTest, AClaimTakesNoMoreDeliveriesThanFreeSlots) {
  std::vector<std::int64_t> logs;
  std::vector<std::int64_t> hooks;
  for (int i = 0; i < 6; ++i) {
    // Due one after another, log lines and webhooks interleaved.
    const std::string due = "now() - interval '1 minute' * " + std::to_string(20 - i);
    logs.push_back(create_one_time("log" + std::to_string(i), due));
    hooks.push_back(create("p_entity_type => 'user', p_entity_id => 'hook" + std::to_string(i) +
                           "', p_event_type => 'nudge', p_channel => 'webhook', "
                           "p_schedule_type => 'one_time', p_run_at => " +
                           due + ", p_target => 'https://example.com/h'")
                        .second);
  }
  std::set<std::int64_t> taken;
  {
    pqxx::work tx(conn_);
    for (const auto& row : exec_claim(tx, "w1", 100, Policy{}, 2))
      taken.insert(row["id"].as<std::int64_t>());
    tx.commit();
  }
  const std::set<std::int64_t> expected{logs.begin(), logs.end()};
  std::set<std::int64_t> first_two = expected;
  first_two.insert(hooks[0]);
  first_two.insert(hooks[1]);
  EXPECT_EQ(taken, first_two) << "every log line, and the two earliest webhooks";
  for (std::size_t i = 2; i < hooks.size(); ++i) expect_unleased(hooks[i]);
  // Without a bound (NULL), the limit alone counts.
  pqxx::work tx(conn_);
  EXPECT_EQ(exec_claim(tx, "w2", 100).size(), 4u);
}

// A claim passes over the targets it is given (a slow host's, explore21a #2): due first, they
// are neither taken nor locked, so later rows of other hosts are reached; another claim takes them.
TEST_F(ClaimFinishTest, AClaimPassesOverTheTargetsItIsGiven) {
  const auto hook = [&](const std::string& id, const std::string& target, int minutes_ago) {
    return create("p_entity_type => 'user', p_entity_id => '" + id +
                  "', p_event_type => 'nudge', p_channel => 'webhook', "
                  "p_schedule_type => 'one_time', p_run_at => now() - interval '1 minute' * " +
                  std::to_string(minutes_ago) + ", p_target => '" + target + "'")
        .second;
  };
  std::set<std::int64_t> slow, others;
  for (int i = 0; i < 5; ++i)
    slow.insert(hook("slow" + std::to_string(i), "http://slow:1/x", 30 - i));
  slow.insert(hook("slow-bare", "http://slow:1", 20));
  others.insert(hook("longer-host", "http://slow:10/x", 10));
  others.insert(hook("other", "https://fast.example/y?z", 9));
  others.insert(create_one_time("log", "now() - interval '8 minutes'"));
  const std::string pass_over = "{http://slow:1,http://slow:1/%,http://slow:1?%,http://slow:1#%}";

  pqxx::connection first_session(db_.url());
  pqxx::work first(first_session);
  std::set<std::int64_t> taken;
  for (const auto& row :
       exec_claim(first, "w1", 4, Policy{}, std::nullopt, std::nullopt, pass_over))
    taken.insert(row["id"].as<std::int64_t>());
  EXPECT_EQ(taken, others) << "the later rows of other hosts, none of the slow host's";
  // Still open: the slow host's rows were not locked, so another claim takes them now.
  pqxx::work second(conn_);
  std::set<std::int64_t> then;
  for (const auto& row : exec_claim(second, "w2", 100)) then.insert(row["id"].as<std::int64_t>());
  EXPECT_EQ(then, slow);
}

// Emails also wait for a free relay connection: past p_email_slots of them the rest stay due,
// and do not use up the webhooks' slots (explore16a #1: a claim took 64 emails for 2
// connections, and the ones waiting inside the worker were sent after a cancel).
TEST_F(ClaimFinishTest, AClaimTakesNoMoreEmailsThanFreeConnections) {
  std::vector<std::int64_t> mails;
  std::vector<std::int64_t> hooks;
  for (int i = 0; i < 4; ++i) {
    // Emails first, then webhooks.
    const std::string mail_due = "now() - interval '1 minute' * " + std::to_string(20 - i);
    const std::string hook_due = "now() - interval '1 minute' * " + std::to_string(10 - i);
    mails.push_back(create("p_entity_type => 'user', p_entity_id => 'mail" + std::to_string(i) +
                           "', p_event_type => 'nudge', p_channel => 'email', "
                           "p_schedule_type => 'one_time', p_run_at => " +
                           mail_due + ", p_target => 'u" + std::to_string(i) + "@example.com'")
                        .second);
    hooks.push_back(create("p_entity_type => 'user', p_entity_id => 'hook" + std::to_string(i) +
                           "', p_event_type => 'nudge', p_channel => 'webhook', "
                           "p_schedule_type => 'one_time', p_run_at => " +
                           hook_due + ", p_target => 'https://example.com/h'")
                        .second);
  }
  std::set<std::int64_t> taken;
  {
    pqxx::work tx(conn_);
    for (const auto& row : exec_claim(tx, "w1", 100, Policy{}, 5, 1))
      taken.insert(row["id"].as<std::int64_t>());
    tx.commit();
  }
  EXPECT_EQ(taken, (std::set<std::int64_t>{mails[0], hooks[0], hooks[1], hooks[2], hooks[3]}))
      << "the earliest email, and every webhook in the other four slots";
  for (std::size_t i = 1; i < mails.size(); ++i) expect_unleased(mails[i]);
  // No connection free: no email, webhooks still.
  pqxx::work tx(conn_);
  EXPECT_EQ(exec_claim(tx, "w2", 100, Policy{}, 5, 0).size(), 0u);  // the webhooks are leased
}

TEST_F(ClaimFinishTest, OneTimeFiresExactlyOnce) {
  const std::int64_t id =
      create(
          "p_entity_type => 'user', p_entity_id => 'u1', p_event_type => 'nudge', "
          "p_channel => 'email', p_schedule_type => 'one_time', p_run_at => " +
          kDue + ", p_target => 'ops@example.com', p_payload => '{\"k\": 1}'")
          .second;

  pqxx::work tx(conn_);
  const pqxx::result claimed = exec_claim(tx, "worker-a", 10);
  tx.commit();
  ASSERT_EQ(claimed.size(), 1u);
  const pqxx::row c = claimed[0];
  EXPECT_EQ(c["id"].as<std::int64_t>(), id);
  EXPECT_EQ(c["entity_type"].as<std::string>(), "user");
  EXPECT_EQ(c["entity_id"].as<std::string>(), "u1");
  EXPECT_EQ(c["event_type"].as<std::string>(), "nudge");
  EXPECT_EQ(c["channel"].as<std::string>(), "email");
  EXPECT_EQ(c["target"].as<std::string>(), "ops@example.com");
  EXPECT_EQ(c["payload"].as<std::string>(), "{\"k\": 1}");
  EXPECT_EQ(c["schedule_type"].as<std::string>(), "one_time");
  EXPECT_EQ(c["attempt"].as<int>(), 1);
  EXPECT_EQ(c["fire_count"].as<int>(), 0);
  EXPECT_TRUE(value<bool>("SELECT next_run_at = $2::timestamptz FROM nudge.reminders WHERE id = $1",
                          id, c["scheduled_for"].as<std::string>()));
  {
    const pqxx::row r = reminder(id);
    EXPECT_EQ(r["leased_by"].as<std::string>(), "worker-a");
    EXPECT_EQ(r["attempt"].as<int>(), 1);
    EXPECT_TRUE(value<bool>(
        "SELECT lease_expires_at BETWEEN now() + interval '25 seconds' AND now() + interval "
        "'31 seconds' FROM nudge.reminders WHERE id = $1",
        id));
  }

  const auto fires = to_claimed(claimed);
  EXPECT_TRUE(finish_and_claim("worker-a", fires, 10).empty());

  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "COMPLETED");
  EXPECT_EQ(r["completed_reason"].as<std::string>(), "fired");
  EXPECT_EQ(r["fire_count"].as<int>(), 1);
  EXPECT_FALSE(r["finished_at"].is_null());
  EXPECT_TRUE(r["last_error"].is_null());
  expect_unleased(id);

  const pqxx::result e = sql("SELECT * FROM nudge.executions");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["reminder_id"].as<std::int64_t>(), id);
  EXPECT_EQ(e[0]["outcome"].as<std::string>(), "delivered");
  EXPECT_EQ(e[0]["worker"].as<std::string>(), "worker-a");
  EXPECT_EQ(e[0]["attempts"].as<int>(), 1);
  EXPECT_TRUE(e[0]["error"].is_null());
  EXPECT_TRUE(value<bool>("SELECT scheduled_for = $1::timestamptz FROM nudge.executions",
                          fires[0].scheduled_for));

  EXPECT_TRUE(claim("worker-a").empty());
  EXPECT_TRUE(claim("worker-b").empty());
  EXPECT_EQ(count("nudge.executions"), 1);
}

TEST_F(ClaimFinishTest, FutureRemindersAreNotClaimed) {
  create_one_time("u1", "now() + interval '5 seconds'");
  create_recurring("u2", 60, kInAnHour);
  EXPECT_TRUE(claim("w1").empty());
  EXPECT_EQ(count("nudge.reminders WHERE leased_by IS NOT NULL"), 0);
}

TEST_F(ClaimFinishTest, ClaimTakesTheEarliestDueFirstUpToTheLimit) {
  std::vector<std::int64_t> by_age;  // oldest first
  for (int i = 0; i < 6; ++i) {
    by_age.push_back(create_one_time("u" + std::to_string(i),
                                     "now() - interval '1 minute' * " + std::to_string(10 - i)));
  }
  const auto first = ids_of(claim("w1", 4));
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(std::set<std::int64_t>(first.begin(), first.end()),
            std::set<std::int64_t>(by_age.begin(), by_age.begin() + 4));
  const auto rest = ids_of(claim("w2", 4));
  EXPECT_EQ(std::set<std::int64_t>(rest.begin(), rest.end()),
            std::set<std::int64_t>(by_age.begin() + 4, by_age.end()));
}

TEST_F(ClaimFinishTest, LimitZeroClaimsNothing) {
  create_one_time("u1");
  EXPECT_TRUE(claim("w1", 0).empty());
  EXPECT_EQ(count("nudge.reminders WHERE leased_by IS NOT NULL"), 0);
}

TEST_F(ClaimFinishTest, FinishAndClaimRecordsThePreviousBatchThenClaimsTheNext) {
  const std::int64_t a = create_one_time("u1", "now() - interval '2 seconds'");
  const auto first = claim("w1", 1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(first[0].id, a);
  const std::int64_t b = create_one_time("u2");

  const auto second = finish_and_claim("w1", first, 10);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].id, b);
  EXPECT_EQ(status(a), "COMPLETED");
  EXPECT_EQ(executions_of(a), 1);
  EXPECT_EQ(reminder(b)["leased_by"].as<std::string>(), "w1");
}

TEST_F(ClaimFinishTest, OneTimeFailedDeliveryIsRecordedAsFailed) {
  const std::int64_t id = create_one_time("u1", kDue, kOneAttempt);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(finish("w1", fires, "failed", "connection refused"), 1);

  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "FAILED");
  EXPECT_EQ(r["completed_reason"].as<std::string>(), "attempts_exhausted");
  EXPECT_EQ(r["last_error"].as<std::string>(), "connection refused");
  EXPECT_EQ(r["fire_count"].as<int>(), 1);
  EXPECT_FALSE(r["finished_at"].is_null());
  const pqxx::row e = sql("SELECT * FROM nudge.executions").at(0);
  EXPECT_EQ(e["outcome"].as<std::string>(), "failed");
  EXPECT_EQ(e["error"].as<std::string>(), "connection refused");
}

TEST_F(ClaimFinishTest, LongErrorsAreCutTo2000Characters) {
  const std::int64_t id = create_recurring("u1", 60, kDue, kOneAttempt);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(finish("w1", fires, "failed", std::string(5000, 'e')), 1);
  EXPECT_EQ(value<int>("SELECT length(last_error) FROM nudge.reminders WHERE id = $1", id), 2000);
  EXPECT_EQ(value<int>("SELECT length(error) FROM nudge.executions"), 2000);
}

TEST_F(ClaimFinishTest, RecurringOnTimeMovesToTheNextInterval) {
  const std::int64_t id = create_recurring("u1", 3600);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_TRUE(finish_and_claim("w1", fires, 10).empty());

  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "ACTIVE");
  EXPECT_TRUE(r["completed_reason"].is_null());
  EXPECT_TRUE(r["finished_at"].is_null());
  EXPECT_EQ(r["fire_count"].as<int>(), 1);
  expect_unleased(id);
  EXPECT_TRUE(value<bool>(
      "SELECT next_run_at = $2::timestamptz + interval '3600 seconds' FROM nudge.reminders"
      " WHERE id = $1",
      id, fires[0].scheduled_for));
  EXPECT_EQ(executions_of(id), 1);
  EXPECT_TRUE(claim("w1").empty());
}

TEST_F(ClaimFinishTest, RecurringFailedDeliveryStillMovesOn) {
  const std::int64_t id = create_recurring("u1", 3600, kDue, kOneAttempt);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(finish("w1", fires, "failed", "HTTP 500"), 1);
  EXPECT_EQ(status(id), "ACTIVE");
  EXPECT_EQ(reminder(id)["last_error"].as<std::string>(), "HTTP 500");
  EXPECT_TRUE(value<bool>(
      "SELECT next_run_at = $2::timestamptz + interval '3600 seconds' FROM nudge.reminders"
      " WHERE id = $1",
      id, fires[0].scheduled_for));
  // A later delivered fire clears the error.
  make_due(id, 2);
  fire_once("w1", id);
  EXPECT_TRUE(reminder(id)["last_error"].is_null());
}

TEST_F(ClaimFinishTest, RecurringAfterMissedIntervalsFiresOnceOnItsOriginalPhase) {
  constexpr int kInterval = 100;
  const std::int64_t id = create_recurring("u1", kInterval, kInAnHour);
  // 3.5 intervals missed (the worker was down).
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '350 seconds' WHERE id = $1", id);
  const std::string anchor = reminder(id)["next_run_at"].c_str();

  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);  // one fire, not a burst
  EXPECT_TRUE(
      value<bool>("SELECT $1::timestamptz = $2::timestamptz", fires[0].scheduled_for, anchor));
  EXPECT_TRUE(finish_and_claim("w1", fires, 10).empty());

  // The first occurrence after now on the original phase: anchor + 4 intervals.
  EXPECT_TRUE(value<bool>(
      "SELECT next_run_at = $2::timestamptz + interval '400 seconds' FROM nudge.reminders"
      " WHERE id = $1",
      id, anchor));
  EXPECT_TRUE(
      value<bool>("SELECT next_run_at > now() AND next_run_at - interval '100 seconds' <= now()"
                  " FROM nudge.reminders WHERE id = $1",
                  id));
  EXPECT_EQ(status(id), "ACTIVE");
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);
  expect_unleased(id);
  EXPECT_TRUE(claim("w1").empty());
  EXPECT_EQ(executions_of(id), 1);
}

// nudge.next_interval_occurrence directly: first occurrence strictly after p_after.
TEST_F(ClaimFinishTest, NextOccurrenceIsTheFirstStrictlyAfterTheGivenTime) {
  struct Case {
    const char* after;  // offset from the anchor
    const char* expected;
  };
  const Case cases[] = {
      {"-10 seconds", "0 seconds"},    // anchor still ahead: the anchor itself
      {"0 seconds", "60 seconds"},     // exactly on an occurrence: the next one
      {"1 second", "60 seconds"},      //
      {"59 seconds", "60 seconds"},    //
      {"60 seconds", "120 seconds"},   //
      {"210 seconds", "240 seconds"},  // 3.5 intervals late: one step to the next on phase
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.after);
    EXPECT_TRUE(value<bool>(
        "SELECT nudge.next_interval_occurrence(a, 60, a + $1::interval) = a + $2::interval"
        " FROM (SELECT timestamptz '2024-01-01 00:00:00+00' AS a) x",
        c.after, c.expected));
  }
}

TEST_F(ClaimFinishTest, MaxFiresCompletesAfterExactlyThatManyFires) {
  constexpr int kMaxFires = 3;
  const std::int64_t id =
      create_recurring("u1", 60, "now() - interval '1 hour'", ", p_max_fires => 3");
  for (int n = 1; n <= kMaxFires; ++n) {
    SCOPED_TRACE("fire " + std::to_string(n));
    if (n > 1) make_due(id, n);
    fire_once("w1", id);
    EXPECT_EQ(reminder(id)["fire_count"].as<int>(), n);
    EXPECT_EQ(status(id), n < kMaxFires ? "ACTIVE" : "COMPLETED");
  }
  EXPECT_EQ(reason(id), "max_fires");
  EXPECT_FALSE(reminder(id)["finished_at"].is_null());
  expect_unleased(id);
  EXPECT_EQ(executions_of(id), kMaxFires);
  make_due(id, 10);
  EXPECT_TRUE(claim("w1").empty());
}

TEST_F(ClaimFinishTest, MaxFiresOfOneMakesARecurringReminderFireOnce) {
  const std::int64_t id = create_recurring("u1", 60, kDue, ", p_max_fires => 1");
  fire_once("w1", id);
  EXPECT_EQ(status(id), "COMPLETED");
  EXPECT_EQ(reason(id), "max_fires");
}

TEST_F(ClaimFinishTest, EndsAtCompletesWhenTheNextOccurrenceWouldBeAfterIt) {
  // First occurrence S = now - 1 s, every 60 s. ends_at one microsecond short of S + 60 s.
  const std::int64_t id =
      create(recurring_args("u1", 60) +
             ", p_ends_at => now() - interval '1 second' + interval '59.999999 seconds'")
          .second;
  fire_once("w1", id);
  EXPECT_EQ(status(id), "COMPLETED");
  EXPECT_EQ(reason(id), "ends_at");
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 1);
  EXPECT_FALSE(reminder(id)["finished_at"].is_null());
  expect_unleased(id);
  EXPECT_EQ(executions_of(id), 1);
}

TEST_F(ClaimFinishTest, EndsAtIsInclusive) {
  // ends_at exactly on the second occurrence: that one still fires, the third never does.
  const std::int64_t id = create(recurring_args("u1", 60) +
                                 ", p_ends_at => now() - interval '1 second' + interval '60 "
                                 "seconds'")
                              .second;
  fire_once("w1", id);
  EXPECT_EQ(status(id), "ACTIVE");
  EXPECT_TRUE(value<bool>("SELECT next_run_at = ends_at FROM nudge.reminders WHERE id = $1", id));

  // Let that occurrence come due: shift the whole schedule an hour back.
  sql("UPDATE nudge.reminders SET next_run_at = next_run_at - interval '1 hour',"
      " ends_at = ends_at - interval '1 hour' WHERE id = $1",
      id);
  fire_once("w1", id);
  EXPECT_EQ(status(id), "COMPLETED");
  EXPECT_EQ(reason(id), "ends_at");
  EXPECT_EQ(reminder(id)["fire_count"].as<int>(), 2);
  EXPECT_EQ(executions_of(id), 2);
}

}  // namespace
}  // namespace nudge::test
