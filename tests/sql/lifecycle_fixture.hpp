#pragma once
// Shared by the SQL lifecycle tests: a fixture that creates reminders and drives claim / finish
// through nudge-worker's own statements (worker/statements.hpp), with scheduled_for and attempt
// passed back as the claim returned them.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "nudge/pg_text.hpp"
#include "statements.hpp"
#include "support/test_database.hpp"

namespace nudge::test {

// A reminder due one second ago / due in an hour (database clock).
inline const std::string kDue = "now() - interval '1 second'";
inline const std::string kInAnHour = "now() + interval '1 hour'";

// One claimed occurrence, as the worker keeps it between claim and finish.
struct Claimed {
  std::int64_t id = 0;
  std::string scheduled_for;  // exactly the text the database sent; passed back unchanged
  int attempt = 0;
  int fire_count = 0;
  std::string schedule_type;
  bool rescued = false;
  int max_attempts = 0;  // the attempt number at which a failure ends the occurrence
  int rate_limits_left = 0;
};

// What a failed statement reported; sqlstate is empty when the statement succeeded.
struct SqlFailure {
  std::string sqlstate;
  std::string message;  // the primary message only: no "ERROR:" prefix, no CONTEXT lines
};

// The primary message of a server error ("ERROR:  x: y\nCONTEXT: ..." gives "x: y").
inline std::string primary_message(const pqxx::sql_error& e) {
  std::string m = e.what();
  for (const std::string prefix : {"ERROR:  ", "FATAL:  "}) {
    if (m.rfind(prefix, 0) == 0) {
      m = m.substr(prefix.size());
      break;
    }
  }
  const auto eol = m.find('\n');
  return eol == std::string::npos ? m : m.substr(0, eol);
}

// The named arguments of a create call, so tests state only what differs.
inline std::string one_time_args(const std::string& entity_id, const std::string& run_at = kDue) {
  return "p_entity_type => 'user', p_entity_id => '" + entity_id +
         "', p_event_type => 'nudge', p_channel => 'log', p_schedule_type => 'one_time', "
         "p_run_at => " +
         run_at;
}

inline std::string recurring_args(const std::string& entity_id, int interval_seconds,
                                  const std::string& run_at = kDue) {
  return "p_entity_type => 'user', p_entity_id => '" + entity_id +
         "', p_event_type => 'nudge', p_channel => 'log', p_schedule_type => 'recurring', "
         "p_interval_seconds => " +
         std::to_string(interval_seconds) + ", p_run_at => " + run_at;
}

// Extra named argument: one attempt per occurrence, so a failed delivery is final.
inline const std::string kOneAttempt = ", p_max_attempts => 1";

// Extra named argument: stop when status flag `key` turns true.
inline std::string stop_on(const std::string& key) {
  return ", p_stop_condition_type => 'db_check', p_stop_condition_value => '" + key + "'";
}

inline std::vector<Claimed> to_claimed(const pqxx::result& rows) {
  std::vector<Claimed> out;
  for (const auto& row : rows) {
    Claimed c;
    c.id = row["id"].as<std::int64_t>();
    c.scheduled_for = row["scheduled_for"].c_str();
    c.attempt = row["attempt"].as<int>();
    c.fire_count = row["fire_count"].as<int>();
    c.schedule_type = row["schedule_type"].c_str();
    c.rescued = row["rescued"].as<bool>();
    c.max_attempts = row["max_attempts"].as<int>();
    c.rate_limits_left = row["rate_limits_left"].as<int>();
    out.push_back(std::move(c));
  }
  return out;
}

inline std::vector<std::int64_t> ids_of(const std::vector<Claimed>& fires) {
  std::vector<std::int64_t> ids;
  for (const auto& f : fires) ids.push_back(f.id);
  return ids;
}

// The worker's policy; tests start from its defaults (config/nudge.toml).
using Policy = statements::WorkerPolicy;

// The array arguments of a finish: ids, scheduled_for, attempts, outcomes, errors, and status
// codes and durations when a test gives them (responses are left out: NULL). A worker always
// sends durations; without them, an attempt is not counted against its host's breaker.
struct FinishArrays {
  std::string ids, scheduled_for, attempts, outcomes, errors;
  std::optional<std::string> status_codes;
  std::optional<std::string> durations;
  std::optional<std::string> retry_after;  // seconds each receiver asked to wait (NULL: none)
};

inline FinishArrays finish_arrays(const std::vector<Claimed>& done, const std::string& outcome,
                                  const std::optional<std::string>& error) {
  std::vector<std::int64_t> ids;
  std::vector<std::string> at;
  std::vector<int> attempts;
  std::vector<std::string> outcomes;
  std::vector<std::optional<std::string>> errors;
  for (const auto& d : done) {
    ids.push_back(d.id);
    at.push_back(d.scheduled_for);
    attempts.push_back(d.attempt);
    outcomes.push_back(outcome);
    errors.push_back(error);
  }
  return {pg_array(ids),    pg_array(at), pg_array(attempts), pg_array(outcomes),
          pg_array(errors), std::nullopt, std::nullopt,       std::nullopt};
}

// The worker's own statements (worker/statements.hpp), bound as nudge-worker binds them.
template <typename Tx>
pqxx::result exec_finish_and_claim(Tx& tx, const std::string& worker, const FinishArrays& a,
                                   int limit, const Policy& p = {},
                                   std::optional<int> slots = std::nullopt,
                                   std::optional<int> email_slots = std::nullopt,
                                   std::optional<std::string> pass_over = std::nullopt) {
  return tx.exec_params(statements::kFinishAndClaim.sql, worker, p.lease_seconds, p.max_attempts,
                        p.retry_base_ms, p.retry_max_ms, p.misfire_threshold_seconds,
                        p.fire_all_cap, p.breaker_failures, p.breaker_open_seconds,
                        p.breaker_max_open_seconds, a.ids, a.scheduled_for, a.attempts, a.outcomes,
                        a.errors, a.status_codes, nullptr, a.durations, limit, slots, a.retry_after,
                        email_slots, pass_over);
}
template <typename Tx>
pqxx::result exec_finish(Tx& tx, const std::string& worker, const FinishArrays& a,
                         const Policy& p = {}) {
  return tx.exec_params(statements::kFinish.sql, worker, p.lease_seconds, p.max_attempts,
                        p.retry_base_ms, p.retry_max_ms, p.misfire_threshold_seconds,
                        p.fire_all_cap, p.breaker_failures, p.breaker_open_seconds,
                        p.breaker_max_open_seconds, a.ids, a.scheduled_for, a.attempts, a.outcomes,
                        a.errors, a.status_codes, nullptr, a.durations, a.retry_after);
}
// A claim alone: a round trip with nothing to finish.
template <typename Tx>
pqxx::result exec_claim(Tx& tx, const std::string& worker, int limit, const Policy& p = {},
                        std::optional<int> slots = std::nullopt,
                        std::optional<int> email_slots = std::nullopt,
                        std::optional<std::string> pass_over = std::nullopt) {
  return exec_finish_and_claim(
      tx, worker,
      FinishArrays{"{}", "{}", "{}", "{}", "{}", std::nullopt, std::nullopt, std::nullopt}, limit,
      p, slots, email_slots, std::move(pass_over));
}

class LifecycleTest : public DatabaseTest {
 protected:
  // nudge.create_reminder(<named_args>): {created, id}.
  std::pair<bool, std::int64_t> create(const std::string& named_args) {
    const pqxx::result r =
        sql("SELECT created, (reminder).id FROM nudge.create_reminder(" + named_args + ")");
    return {r.at(0).at(0).as<bool>(), r.at(0).at(1).as<std::int64_t>()};
  }
  std::int64_t create_one_time(const std::string& entity_id, const std::string& run_at = kDue,
                               const std::string& extra = "") {
    return create(one_time_args(entity_id, run_at) + extra).second;
  }
  std::int64_t create_recurring(const std::string& entity_id, int interval_seconds,
                                const std::string& run_at = kDue, const std::string& extra = "") {
    return create(recurring_args(entity_id, interval_seconds, run_at) + extra).second;
  }

  // One worker round trip on conn_: finish `done` with `outcome`, then claim up to `limit`.
  std::vector<Claimed> finish_and_claim(const std::string& worker, const std::vector<Claimed>& done,
                                        int limit, int lease_seconds = 30, int max_attempts = 3,
                                        const std::string& outcome = "delivered",
                                        const std::optional<std::string>& error = std::nullopt) {
    Policy policy;
    policy.lease_seconds = lease_seconds;
    policy.max_attempts = max_attempts;
    return round(worker, finish_arrays(done, outcome, error), limit, policy);
  }
  // The same with the arrays and the policy as given.
  std::vector<Claimed> round(const std::string& worker, const FinishArrays& a, int limit,
                             const Policy& policy) {
    pqxx::work tx(conn_);
    const pqxx::result r = exec_finish_and_claim(tx, worker, a, limit, policy);
    tx.commit();
    return to_claimed(r);
  }
  std::vector<Claimed> claim(const std::string& worker, int limit = 100, int lease_seconds = 30,
                             int max_attempts = 3) {
    return finish_and_claim(worker, {}, limit, lease_seconds, max_attempts);
  }
  // The worker's finish: how many attempts it recorded (three attempts per occurrence, the
  // worker's default).
  int finish(const std::string& worker, const std::vector<Claimed>& done,
             const std::string& outcome = "delivered",
             const std::optional<std::string>& error = std::nullopt) {
    pqxx::work tx(conn_);
    const pqxx::result r = exec_finish(tx, worker, finish_arrays(done, outcome, error));
    tx.commit();
    return r.at(0).at(0).as<int>();
  }

  // The reminder's row as it is now.
  pqxx::row reminder(std::int64_t id) {
    return sql("SELECT * FROM nudge.reminders WHERE id = $1", id).at(0);
  }
  std::string status(std::int64_t id) { return reminder(id)["status"].c_str(); }
  // completed_reason, or "NULL".
  std::string reason(std::int64_t id) {
    const pqxx::row r = reminder(id);
    return r["completed_reason"].is_null() ? "NULL" : r["completed_reason"].c_str();
  }
  long count(const std::string& query) { return value<long>("SELECT count(*) FROM " + query); }
  long executions_of(std::int64_t id) {
    return value<long>("SELECT count(*) FROM nudge.executions WHERE reminder_id = $1", id);
  }

  // Runs a statement exactly as typed at a psql prompt (autocommit, no parameters).
  void exec_as_user(const std::string& statement) {
    pqxx::nontransaction tx(conn_);
    tx.exec(statement);
  }

  // Runs `query`, expecting it to fail; what it reported (sqlstate empty if it succeeded).
  template <typename... Args>
  SqlFailure failure_of(const std::string& query, Args&&... args) {
    try {
      sql(query, std::forward<Args>(args)...);
    } catch (const pqxx::sql_error& e) {
      return {e.sqlstate(), primary_message(e)};
    }
    return {"", "(no error)"};
  }
};

}  // namespace nudge::test
