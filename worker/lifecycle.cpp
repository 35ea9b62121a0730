#include "lifecycle.hpp"

#include <poll.h>

#include <algorithm>
#include <cmath>

#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/migrations.hpp"
#include "nudge/pg_text.hpp"
#include "statements.hpp"

namespace nudge {

namespace {

using namespace statements;

// The array arguments of a finish, one per column of the attempts that ended.
struct FinishedArrays {
  std::string ids, scheduled_for, attempts, outcomes, errors, status_codes, responses, durations;
  std::optional<std::string> retry_after;  // NULL unless a receiver asked to wait (rare)

  explicit FinishedArrays(const std::vector<FireOutcome>& done) {
    std::vector<std::int64_t> id;
    std::vector<std::string> at;
    std::vector<int> attempt;
    std::vector<std::string> outcome;
    std::vector<std::optional<std::string>> error;
    std::vector<std::optional<int>> code;
    std::vector<std::optional<std::string>> response;
    std::vector<std::optional<int>> duration;
    std::vector<std::optional<int>> wait;
    for (const auto& d : done) {
      id.push_back(d.id);
      at.push_back(d.scheduled_for);
      attempt.push_back(d.attempt);
      outcome.emplace_back(d.delivery.delivered     ? "delivered"
                           : d.delivery.final       ? "rejected"
                           : d.delivery.unreachable ? "unreachable"
                                                    : "failed");
      error.push_back(d.delivery.error.empty() ? std::nullopt
                                               : std::optional<std::string>(d.delivery.error));
      code.push_back(d.delivery.status_code);
      response.push_back(d.delivery.response.empty()
                             ? std::nullopt
                             : std::optional<std::string>(d.delivery.response));
      duration.push_back(d.duration_ms);
      wait.push_back(d.delivery.retry_after_seconds);
    }
    ids = pg_array(id);
    scheduled_for = pg_array(at);
    attempts = pg_array(attempt);
    outcomes = pg_array(outcome);
    errors = pg_array(error);
    status_codes = pg_array(code);
    responses = pg_array(response);
    durations = pg_array(duration);
    if (std::any_of(wait.begin(), wait.end(), [](const auto& w) { return w.has_value(); }))
      retry_after = pg_array(wait);
  }
};

}  // namespace

class LifecycleSession::Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, std::atomic<int>& count)
      : pqxx::notification_receiver(conn, statements::kWakeChannel), count_(count) {}
  void operator()(const std::string&, int) override { ++count_; }

 private:
  std::atomic<int>& count_;
};

// Logs the circuit breaker changes its session's owner made: every worker hears every change,
// and the one whose claim or finish made it tells it.
class LifecycleSession::BreakerLog final : public pqxx::notification_receiver {
 public:
  BreakerLog(pqxx::connection_base& conn, std::string owner)
      : pqxx::notification_receiver(conn, statements::kBreakerChannel), owner_(std::move(owner)) {}
  void operator()(const std::string& payload, int) override {
    const auto change = nlohmann::json::parse(payload, nullptr, false);
    if (!change.is_object() || change.value("worker", "") != owner_) return;
    log::write(
        change.value("to", "") == "open" ? log::Level::warn : log::Level::info,
        "circuit breaker changed state",
        {{"host", change.value("host", "")},
         {"from", change.value("from", "")},
         {"to", change.value("to", "")},
         {"failures", change.value("failures", 0)},
         {"last_error", change.contains("last_error") ? change["last_error"] : nlohmann::json()},
         {"next_probe_at",
          change.contains("next_probe_at") ? change["next_probe_at"] : nlohmann::json()}});
  }

 private:
  const std::string owner_;
};

LifecycleSession::LifecycleSession(const std::string& url, const std::string& application_name,
                                   bool listen)
    : conn_(open_connection(url, application_name)) {
  // A worker's commits need not wait for the WAL flush: they are visible to every other worker
  // at once, and if the server crashes before the flush, the lost claim or finish only means the
  // occurrence is delivered again (same idempotency key) and still recorded once. Waiting for
  // the flush before each delivery would add its latency to every fire.
  // What a worker changes is not audited: its fires are recorded in executions already
  // (sql/migrations/0012_tokens_and_audit.sql).
  warnings_ = log_database_warnings(*conn_);
  pqxx::nontransaction(*conn_).exec("SET synchronous_commit = off; SET nudge.audit = 'off'");
  for (const auto& s : kAll) conn_->prepare(s.name, s.sql);
  if (listen) {
    receiver_ = std::make_unique<Receiver>(*conn_, notified_);
    breaker_log_ = std::make_unique<BreakerLog>(*conn_, application_name);
  }
}

LifecycleSession::~LifecycleSession() {
  // The receiver must go before its connection.
  try {
    receiver_.reset();
    breaker_log_.reset();
    warnings_.reset();
  } catch (...) {
  }
}

WorkerPolicy worker_policy(const Config& config) {
  return {config.worker.lease_seconds,      config.retry.max_attempts,
          config.retry.base_delay_ms,       config.retry.max_delay_ms,
          config.misfire.threshold_seconds, config.misfire.fire_all_cap,
          config.breaker.failures,          config.breaker.open_seconds,
          config.breaker.max_open_seconds};
}

std::vector<Fire> LifecycleSession::finish_and_claim(const std::string& owner,
                                                     const std::vector<FireOutcome>& done,
                                                     int limit, int slots, int email_slots,
                                                     const WorkerPolicy& policy,
                                                     const std::vector<std::string>& pass_over) {
  const FinishedArrays a(done);
  const std::optional<std::string> patterns =
      pass_over.empty() ? std::nullopt : std::optional<std::string>(pg_array(pass_over));
  pqxx::result rows;
  {
    pqxx::nontransaction tx(*conn_);
    rows = tx.exec_prepared(kFinishAndClaim.name, owner, policy.lease_seconds, policy.max_attempts,
                            policy.retry_base_ms, policy.retry_max_ms,
                            policy.misfire_threshold_seconds, policy.fire_all_cap,
                            policy.breaker_failures, policy.breaker_open_seconds,
                            policy.breaker_max_open_seconds, a.ids, a.scheduled_for, a.attempts,
                            a.outcomes, a.errors, a.status_codes, a.responses, a.durations, limit,
                            slots, a.retry_after, email_slots, patterns);
  }
  log_breaker_changes();
  std::vector<Fire> fires;
  fires.reserve(rows.size());
  for (const auto& row : rows) {
    Fire f;
    f.id = row[0].as<std::int64_t>();
    f.entity_type = row[1].c_str();
    f.entity_id = row[2].c_str();
    f.event_type = row[3].c_str();
    f.channel = row[4].c_str();
    if (!row[5].is_null()) f.target = row[5].c_str();
    f.payload_json = row[6].c_str();
    f.schedule_type = row[7].c_str();
    f.scheduled_for = row[8].c_str();
    f.attempt = row[9].as<int>();
    f.max_attempts = row[10].as<int>();
    f.fire_count = row[11].as<int>();
    if (!row[12].is_null()) f.request = row[12].c_str();
    f.rescued = row[13].as<bool>();
    f.free_tries_left =
        row[14].as<int>();  // the claim's rate_limits_left: 429s and unreachable tries
    fires.push_back(std::move(f));
  }
  return fires;
}

int LifecycleSession::finish(const std::string& owner, const std::vector<FireOutcome>& done,
                             const WorkerPolicy& policy) {
  if (done.empty()) return 0;
  const FinishedArrays a(done);
  int recorded = 0;
  {
    pqxx::nontransaction tx(*conn_);
    recorded = tx.exec_prepared1(kFinish.name, owner, policy.lease_seconds, policy.max_attempts,
                                 policy.retry_base_ms, policy.retry_max_ms,
                                 policy.misfire_threshold_seconds, policy.fire_all_cap,
                                 policy.breaker_failures, policy.breaker_open_seconds,
                                 policy.breaker_max_open_seconds, a.ids, a.scheduled_for,
                                 a.attempts, a.outcomes, a.errors, a.status_codes, a.responses,
                                 a.durations, a.retry_after)[0]
                   .as<int>();
  }
  log_breaker_changes();
  if (recorded < static_cast<int>(done.size())) {  // as nudge.finish_and_claim warns
    log::warn("ended attempts were not recorded: this worker no longer held their leases",
              {{"owner", owner},
               {"not_recorded", static_cast<int>(done.size()) - recorded},
               {"of", done.size()}});
  }
  return recorded;
}

void LifecycleSession::log_breaker_changes() {
  // A session hears its own notifications with the answer to the statement that made them
  // (libpqxx hands them out only outside a transaction); wake-ups taken here stay counted for
  // take_notifications().
  if (breaker_log_) conn_->get_notifs();
}

std::optional<double> LifecycleSession::seconds_until_due() {
  pqxx::nontransaction tx(*conn_);
  const pqxx::row row = tx.exec_prepared1(kSecondsUntilDue.name);
  if (row[0].is_null()) return std::nullopt;
  return row[0].as<double>();
}

int LifecycleSession::extend_leases(const std::string& owner, const std::vector<std::int64_t>& ids,
                                    int lease_seconds) {
  pqxx::nontransaction tx(*conn_);
  return tx.exec_prepared1(kExtendLeases.name, owner, pg_array(ids), lease_seconds)[0].as<int>();
}

int LifecycleSession::release_leases(const std::string& owner,
                                     const std::vector<std::int64_t>& ids) {
  pqxx::nontransaction tx(*conn_);
  return tx.exec_prepared1(kReleaseLeases.name, owner, pg_array(ids))[0].as<int>();
}

int LifecycleSession::release_leases_except(const std::string& owner,
                                            const std::vector<std::int64_t>& kept) {
  pqxx::nontransaction tx(*conn_);
  return tx.exec_prepared1(kReleaseLeasesExcept.name, owner, pg_array(kept))[0].as<int>();
}

std::vector<std::int64_t> LifecycleSession::free_of_locks(const std::vector<std::int64_t>& ids) {
  pqxx::nontransaction tx(*conn_);
  std::vector<std::int64_t> free;
  for (const auto& row : tx.exec_prepared(kFreeOfLocks.name, pg_array(ids)))
    free.push_back(row[0].as<std::int64_t>());
  return free;
}

void LifecycleSession::pause_and_release(std::int64_t id, const std::string& owner) {
  pqxx::nontransaction tx(*conn_);
  tx.exec_prepared(kPauseAndRelease.name, id, owner);
}

int LifecycleSession::finish_abandoned(const std::string& owner, const WorkerPolicy& policy) {
  pqxx::nontransaction tx(*conn_);
  return tx
      .exec_prepared1(kFinishAbandoned.name, owner, policy.lease_seconds, policy.max_attempts,
                      policy.retry_base_ms, policy.retry_max_ms, policy.misfire_threshold_seconds,
                      policy.fire_all_cap, policy.breaker_failures, policy.breaker_open_seconds,
                      policy.breaker_max_open_seconds)[0]
      .as<int>();
}

int LifecycleSession::prune_history(int retention_days, int limit) {
  pqxx::nontransaction tx(*conn_);
  return tx.exec_prepared1(kPruneHistory.name, retention_days, limit)[0].as<int>();
}

std::optional<std::string> LifecycleSession::newer_breaking_migration() {
  return nudge::newer_breaking_migration(*conn_);
}

int LifecycleSession::socket() const {
  return conn_->sock();
}

int LifecycleSession::take_notifications() {
  conn_->get_notifs();
  return notified_.exchange(0);
}

int LifecycleSession::wait(double seconds, int interrupt_fd) {
  if (const int n = take_notifications(); n > 0) return n;
  pollfd fds[2] = {{conn_->sock(), POLLIN, 0}, {interrupt_fd, POLLIN, 0}};
  const double whole = std::floor(seconds);
  timespec ts{static_cast<time_t>(whole), static_cast<long>((seconds - whole) * 1e9)};
  const int n = ::ppoll(fds, interrupt_fd >= 0 ? 2 : 1, &ts, nullptr);
  if (n > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) return take_notifications();
  return 0;
}

}  // namespace nudge
