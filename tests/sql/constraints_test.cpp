// Every named constraint rejects the rows it exists for, even when the lifecycle
// functions are bypassed with direct INSERT / UPDATE; the error names the constraint.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class ConstraintsTest : public LifecycleTest {};

// A direct INSERT of a valid reminder, with some columns replaced by SQL expressions.
std::string insert_reminder(const std::map<std::string, std::string>& overrides) {
  std::map<std::string, std::string> cols = {
      {"entity_type", "'user'"}, {"entity_id", "'u-direct'"},     {"event_type", "'nudge'"},
      {"channel", "'log'"},      {"schedule_type", "'one_time'"}, {"next_run_at", "now()"},
  };
  for (const auto& [k, v] : overrides) cols[k] = v;
  std::string names, values;
  for (const auto& [k, v] : cols) {
    names += (names.empty() ? "" : ", ") + k;
    values += (values.empty() ? "" : ", ") + v;
  }
  return "INSERT INTO nudge.reminders (" + names + ") VALUES (" + values + ")";
}

// An UPDATE of the valid reminder the test seeds (entity_id 'seed').
std::string update_seed(const std::string& set) {
  return "UPDATE nudge.reminders SET " + set + " WHERE entity_id = 'seed'";
}

struct Violation {
  const char* constraint;
  std::string statement;
  const char* sqlstate = "23514";
};

std::vector<Violation> Violations() {
  return {
      {"entity_type_is_1_to_200_chars", insert_reminder({{"entity_type", "''"}})},
      {"entity_type_is_1_to_200_chars", update_seed("entity_type = repeat('x', 201)")},
      {"entity_id_is_1_to_200_chars", insert_reminder({{"entity_id", "repeat('x', 201)"}})},
      {"event_type_is_1_to_200_chars", insert_reminder({{"event_type", "''"}})},
      {"channel_is_known", insert_reminder({{"channel", "'sms'"}})},
      {"channel_is_known", update_seed("channel = 'LOG'")},
      {"target_is_at_most_2048_chars", insert_reminder({{"target", "repeat('t', 2049)"}})},
      {"target_is_no_template",
       insert_reminder({{"channel", "'webhook'"}, {"target", "'https://example.com/{{x}}'"}})},
      {"payload_is_object", insert_reminder({{"payload", "'[]'"}})},
      {"payload_is_object", update_seed("payload = '42'")},
      {"payload_is_at_most_64_kib",
       insert_reminder({{"payload", "jsonb_build_object('k', repeat('x', 70000))"}})},
      {"schedule_type_is_known", insert_reminder({{"schedule_type", "'cronish'"}})},
      {"only_cron_has_expression_and_zone", insert_reminder({{"schedule_type", "'cron'"}})},
      {"only_cron_has_expression_and_zone",
       insert_reminder({{"cron", "'* * * * *'"},
                        {"timezone", "'UTC'"},
                        {"cron_schedule", "nudge.cron_parse('* * * * *')"}})},
      {"cron_has_no_interval", insert_reminder({{"schedule_type", "'cron'"},
                                                {"cron", "'* * * * *'"},
                                                {"timezone", "'UTC'"},
                                                {"cron_schedule", "nudge.cron_parse('* * * * *')"},
                                                {"interval_seconds", "60"}})},
      {"cron_is_at_most_200_chars",
       insert_reminder({{"schedule_type", "'cron'"},
                        {"cron", "repeat('*', 201)"},
                        {"timezone", "'UTC'"},
                        {"cron_schedule", "nudge.cron_parse('* * * * *')"}})},
      {"misfire_policy_is_known", insert_reminder({{"misfire_policy", "'fire_twice'"}})},
      {"one_time_misfire_policy_is_fire_once", insert_reminder({{"misfire_policy", "'skip'"}})},
      {"max_attempts_is_1_to_100", insert_reminder({{"max_attempts", "0"}})},
      {"max_attempts_is_1_to_100", update_seed("max_attempts = 101")},
      {"catch_up_fires_is_not_negative", update_seed("catch_up_fires = -1")},
      {"target_fits_channel",
       insert_reminder({{"channel", "'webhook'"}, {"target", "'ftp://example.com/x'"}})},
      {"target_fits_channel",
       insert_reminder({{"channel", "'email'"}, {"target", "'not an address'"}})},
      {"contact_entity_type_is_1_to_200_chars",
       "INSERT INTO nudge.contacts VALUES ('', 'i', 'email', 'a@b.co')"},
      {"contact_entity_id_is_1_to_200_chars",
       "INSERT INTO nudge.contacts VALUES ('t', repeat('i', 201), 'email', 'a@b.co')"},
      {"contact_channel_is_webhook_or_email",
       "INSERT INTO nudge.contacts VALUES ('t', 'i', 'log', 'a@b.co')"},
      {"contact_address_fits_channel",
       "INSERT INTO nudge.contacts VALUES ('t', 'i', 'webhook', 'a@b.co')"},
      {"attempt_outcome_is_known",
       "INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, worker)"
       " VALUES (1, now(), 1, 'lost', 'w')"},
      {"attempt_number_is_positive",
       "INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, worker)"
       " VALUES (1, now(), 0, 'failed', 'w')"},
      {"attempt_error_is_at_most_2000_chars",
       "INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, worker, "
       "error)"
       " VALUES (1, now(), 1, 'failed', 'w', repeat('e', 2001))"},
      {"attempt_response_is_at_most_1024_chars",
       "INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, worker,"
       " response) VALUES (1, now(), 1, 'failed', 'w', repeat('r', 1025))"},
      {"attempt_duration_is_not_negative",
       "INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, worker,"
       " duration_ms) VALUES (1, now(), 1, 'failed', 'w', -1)"},
      {"recurring_has_interval_of_1s_to_366_days",
       insert_reminder({{"schedule_type", "'recurring'"}, {"interval_seconds", "0"}})},
      {"recurring_has_interval_of_1s_to_366_days",
       insert_reminder({{"schedule_type", "'recurring'"}, {"interval_seconds", "31622401"}})},
      {"one_time_has_no_interval", insert_reminder({{"interval_seconds", "60"}})},
      {"stop_condition_is_db_check_with_flag_key",
       insert_reminder({{"stop_condition_type", "'http'"}, {"stop_condition_value", "'flag'"}})},
      {"stop_condition_is_db_check_with_flag_key",
       insert_reminder(
           {{"stop_condition_type", "'db_check'"}, {"stop_condition_value", "repeat('f', 201)"}})},
      {"max_fires_is_positive", insert_reminder({{"max_fires", "0"}})},
      {"fire_count_is_not_negative", update_seed("fire_count = -1")},
      {"completed_reason_fits_status", insert_reminder({{"completed_reason", "'fired'"}})},
      {"completed_reason_fits_status",
       update_seed("status = 'PAUSED', completed_reason = 'cancelled'")},
      {"completed_reason_fits_status",
       update_seed("status = 'COMPLETED', completed_reason = 'cancelled', finished_at = now()")},
      {"completed_reason_fits_status",
       update_seed("status = 'CANCELLED', completed_reason = 'fired', finished_at = now()")},
      {"completed_reason_fits_status",
       update_seed("status = 'FAILED', completed_reason = 'max_fires', finished_at = now()")},
      {"completed_reason_fits_status",
       update_seed("status = 'COMPLETED', completed_reason = 'done', finished_at = now()")},
      {"finished_at_set_once_finished", insert_reminder({{"finished_at", "now()"}})},
      {"finished_at_set_once_finished",
       update_seed("status = 'COMPLETED', completed_reason = 'fired'")},
      {"finished_at_set_once_finished",
       update_seed("status = 'CANCELLED', completed_reason = 'cancelled'")},
      {"lease_has_owner_and_expiry", update_seed("leased_by = 'w1'")},
      {"lease_has_owner_and_expiry", update_seed("lease_expires_at = now()")},
      {"attempt_is_not_negative", update_seed("attempt = -1")},
      {"last_error_is_at_most_2000_chars", update_seed("last_error = repeat('e', 2001)")},
      {"flag_key_is_1_to_200_chars", "INSERT INTO nudge.status_flags (key) VALUES ('')"},
      {"flag_key_is_1_to_200_chars",
       "INSERT INTO nudge.status_flags (key) VALUES (repeat('k', 201))"},
      {"execution_outcome_is_known",
       "INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker)"
       " VALUES (1, now(), 'lost', 1, 'w1')"},
      {"execution_attempts_is_positive",
       "INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker)"
       " VALUES (1, now(), 'delivered', 0, 'w1')"},
      // The unique ones.
      {"one_execution_per_occurrence",
       "INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker)"
       " VALUES (7, '2024-01-01 00:00:00+00', 'delivered', 1, 'w1'),"
       "        (7, '2024-01-01 00:00:00+00', 'failed', 2, 'w2')",
       "23505"},
      {"reminders_one_live_per_identity", insert_reminder({{"entity_id", "'seed'"}}), "23505"},
      {"reminders_one_live_per_identity",
       insert_reminder({{"entity_id", "'seed'"}, {"status", "'PAUSED'"}}), "23505"},
  };
}

// Rows that leave a required value NULL. A CHECK whose expression is NULL passes, so each of
// these constraints must be written to be false, not NULL, for them.
std::vector<Violation> NullViolations() {
  return {
      {"recurring_has_interval_of_1s_to_366_days",
       insert_reminder({{"schedule_type", "'recurring'"}})},
      {"recurring_has_interval_of_1s_to_366_days", update_seed("schedule_type = 'recurring'")},
      {"stop_condition_is_db_check_with_flag_key",
       insert_reminder({{"stop_condition_type", "'db_check'"}})},
      {"stop_condition_is_db_check_with_flag_key",
       insert_reminder({{"stop_condition_value", "'flag'"}})},
      {"completed_reason_fits_status", update_seed("status = 'COMPLETED', finished_at = now()")},
      {"completed_reason_fits_status", update_seed("status = 'CANCELLED', finished_at = now()")},
      {"completed_reason_fits_status", update_seed("status = 'FAILED', finished_at = now()")},
  };
}

// Unknown statuses: the error must name the rule that was broken.
std::vector<Violation> StatusViolations() {
  return {
      {"status_is_known", insert_reminder({{"status", "'BOGUS'"}})},
      {"status_is_known", update_seed("status = 'active'")},
      {"status_is_known", update_seed("status = 'DONE', finished_at = now()")},
  };
}

class ConstraintCases : public ConstraintsTest {
 protected:
  // Seeds one valid reminder (entity_id 'seed'), runs every case in its own transaction that is
  // always rolled back (cases stay independent), and checks the error names the constraint.
  void expect_each_rejected(const std::vector<Violation>& cases) {
    sql(insert_reminder({{"entity_id", "'seed'"}}));
    for (const Violation& v : cases) {
      SCOPED_TRACE(v.statement.substr(0, 200));
      SqlFailure f{"", "(no error: the row was accepted)"};
      {
        pqxx::work tx(conn_);
        try {
          tx.exec(v.statement);
        } catch (const pqxx::sql_error& e) {
          f = {e.sqlstate(), primary_message(e)};
        }
      }  // rolled back
      EXPECT_EQ(f.sqlstate, v.sqlstate) << f.message;
      EXPECT_NE(f.message.find(std::string("\"") + v.constraint + "\""), std::string::npos)
          << "message \"" << f.message << "\" does not name " << v.constraint;
    }
    EXPECT_EQ(count("nudge.reminders"), 1);
    EXPECT_EQ(count("nudge.reminders WHERE status = 'ACTIVE' AND entity_id = 'seed'"), 1);
    EXPECT_EQ(count("nudge.executions"), 0);
    EXPECT_EQ(count("nudge.status_flags"), 0);
  }
};

TEST_F(ConstraintCases, EveryViolationFailsNamingItsConstraint) {
  expect_each_rejected(Violations());
}

TEST_F(ConstraintCases, RequiredValuesLeftNullViolateTheirConstraint) {
  expect_each_rejected(NullViolations());
}

TEST_F(ConstraintCases, UnknownStatusIsReportedAsStatusIsKnown) {
  expect_each_rejected(StatusViolations());
}

// What the NULL gap above costs: a recurring row without an interval (a direct INSERT, as in
// bulk loads) gets NULL for its next occurrence when finished, which violates NOT NULL and
// aborts the whole batch; once its attempts are exhausted every claim fails the same way, so no
// worker can claim anything. The row must be rejected when written.
TEST_F(ConstraintsTest, RecurringRowWithoutIntervalCannotBlockTheQueue) {
  const SqlFailure rejected =
      failure_of(insert_reminder({{"entity_id", "'no-interval'"},
                                  {"schedule_type", "'recurring'"},
                                  {"next_run_at", "now() - interval '1 minute'"}}));
  if (rejected.sqlstate == "23514") {
    EXPECT_NE(rejected.message.find("recurring_has_interval_of_1s_to_366_days"), std::string::npos)
        << rejected.message;
    return;
  }
  ADD_FAILURE() << "a recurring reminder without interval_seconds was accepted";
  const std::int64_t good = create_one_time("good");
  // One worker's round trip with both rows.
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 2u);
  const FinishArrays a = finish_arrays(fires, "delivered", std::nullopt);
  SqlFailure finished{"", ""};
  try {
    pqxx::work tx(conn_);
    exec_finish(tx, "w1", a);
    tx.commit();
  } catch (const pqxx::sql_error& e) {
    finished = {e.sqlstate(), primary_message(e)};
  }
  EXPECT_EQ(finished.sqlstate, "") << "finishing the batch failed: " << finished.message;
  EXPECT_EQ(executions_of(good), 1) << "the good reminder's delivery was not recorded";
  // Its attempts run out: a claim must still work for everyone else.
  sql("UPDATE nudge.reminders SET lease_expires_at = now() - interval '1 second', attempt = 3"
      " WHERE entity_id = 'no-interval'");
  create_one_time("other");
  EXPECT_NO_THROW(claim("w2", 10)) << "claiming failed";
}

TEST_F(ConstraintsTest, TheBaseRowsOfTheTableAreValid) {
  // So each violation above fails for its own column, not for the rest of the row.
  EXPECT_EQ(failure_of(insert_reminder({})).sqlstate, "");
  EXPECT_EQ(failure_of(insert_reminder({{"entity_id", "'u2'"},
                                        {"schedule_type", "'recurring'"},
                                        {"interval_seconds", "31622400"},
                                        {"status", "'COMPLETED'"},
                                        {"completed_reason", "'ends_at'"},
                                        {"finished_at", "now()"},
                                        {"leased_by", "'w1'"},
                                        {"lease_expires_at", "now()"}}))
                .sqlstate,
            "");
  EXPECT_EQ(
      failure_of("INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts,"
                 " worker) VALUES (7, now(), 'delivered', 1, 'w1')")
          .sqlstate,
      "");
  EXPECT_EQ(failure_of("INSERT INTO nudge.status_flags (key) VALUES (repeat('k', 200))").sqlstate,
            "");
}

// The CHECKs of the tables and those of the domains of their columns.
TEST_F(ConstraintsTest, EveryNamedCheckConstraintHasACase) {
  const pqxx::result all =
      sql("WITH t(rel) AS (VALUES ('nudge.reminders'::regclass), ('nudge.status_flags'::regclass),"
          " ('nudge.executions'::regclass), ('nudge.contacts'::regclass),"
          " ('nudge.delivery_attempts'::regclass))"
          " SELECT conname FROM pg_constraint"
          " WHERE contype = 'c' AND (conrelid IN (SELECT rel FROM t) OR contypid IN"
          " (SELECT atttypid FROM pg_attribute WHERE attrelid IN (SELECT rel FROM t)))");
  std::set<std::string> covered;
  for (const auto& table : {Violations(), NullViolations(), StatusViolations()}) {
    for (const Violation& v : table) covered.insert(v.constraint);
  }
  ASSERT_GT(all.size(), 20u);
  for (const auto& row : all) {
    EXPECT_EQ(covered.count(row[0].as<std::string>()), 1u)
        << "no violation case for constraint " << row[0].as<std::string>();
  }
}

TEST_F(ConstraintsTest, FinishedRowsMayShareAnIdentity) {
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(failure_of(insert_reminder({{"status", "'COMPLETED'"},
                                          {"completed_reason", "'fired'"},
                                          {"finished_at", "now()"}}))
                  .sqlstate,
              "");
  }
  EXPECT_EQ(failure_of(insert_reminder({})).sqlstate, "");
  EXPECT_EQ(count("nudge.reminders"), 3);
}

}  // namespace
}  // namespace nudge::test
