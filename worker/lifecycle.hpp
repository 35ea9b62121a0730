#pragma once
// The worker's only way into the database: named, prepared calls to the worker protocol of schema
// nudge. Every statement the worker sends is in statements.hpp.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "channel.hpp"
#include "statements.hpp"

namespace nudge {

// How one attempt ended, to be recorded by finish.
struct FireOutcome {
  std::int64_t id = 0;
  std::string scheduled_for;
  int attempt = 0;
  Delivery delivery;
  std::optional<int> duration_ms;  // none when the host's breaker must not count it
};

using statements::WorkerPolicy;

// The policy `config` sets ([worker] lease_seconds, [retry], [misfire]).
WorkerPolicy worker_policy(const Config& config);

// One connection with the lifecycle statements prepared; when `listen`, it also hears the
// nudge_due wake-ups (a connection that listens must keep reading them) and logs the circuit
// breaker changes its claims and finishes make (`application_name` is the owner they name).
class LifecycleSession {
 public:
  LifecycleSession(const std::string& url, const std::string& application_name, bool listen = true);
  ~LifecycleSession();
  LifecycleSession(const LifecycleSession&) = delete;
  LifecycleSession& operator=(const LifecycleSession&) = delete;

  // Records `done` and claims up to `limit` due fires for `owner`, at most `slots` of them
  // webhooks and emails and `email_slots` emails (log lines take no slot), passing over targets
  // LIKE any of `pass_over` (none when empty), in one transaction.
  std::vector<Fire> finish_and_claim(const std::string& owner, const std::vector<FireOutcome>& done,
                                     int limit, int slots, int email_slots,
                                     const WorkerPolicy& policy,
                                     const std::vector<std::string>& pass_over = {});
  // Records `done` only; returns how many attempts were recorded (lost leases are not).
  int finish(const std::string& owner, const std::vector<FireOutcome>& done,
             const WorkerPolicy& policy);
  // Seconds until a claim could find work (database clock); nullopt when nothing is scheduled.
  std::optional<double> seconds_until_due();
  int extend_leases(const std::string& owner, const std::vector<std::int64_t>& ids,
                    int lease_seconds);
  // Gives back the listed leases `owner` holds.
  int release_leases(const std::string& owner, const std::vector<std::int64_t>& ids);
  // Gives back every due lease `owner` holds but those of `kept` (outcomes still to record).
  int release_leases_except(const std::string& owner, const std::vector<std::int64_t>& kept);
  // Those of `ids` whose rows no other transaction holds now (statements::kFreeOfLocks).
  std::vector<std::int64_t> free_of_locks(const std::vector<std::int64_t>& ids);
  // Pauses reminder `id` and gives back `owner`'s lease on it (statements::kPauseAndRelease).
  void pause_and_release(std::int64_t id, const std::string& owner);
  // Records the occurrences of reminders stopped while a worker that has since died held them
  // (nudge.finish_abandoned); returns how many.
  int finish_abandoned(const std::string& owner, const WorkerPolicy& policy);
  int prune_history(int retention_days, int limit);
  // A breaking migration newer than this binary, landed while it runs (nudge/migrations.hpp).
  std::optional<std::string> newer_breaking_migration();

  // The connection's socket: readable when a wake-up (or anything else) arrives.
  int socket() const;

  // Takes wake-up notifications already received; returns how many arrived.
  int take_notifications();
  // Sleeps until a notification arrives, `seconds` pass, or `interrupt_fd` becomes readable;
  // returns how many notifications it took.
  int wait(double seconds, int interrupt_fd);

 private:
  class Receiver;
  class BreakerLog;
  // Logs the breaker changes the last statement made (they come with its answer).
  void log_breaker_changes();

  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<BreakerLog> breaker_log_;
  std::unique_ptr<pqxx::errorhandler> warnings_;  // what the database warns: logged
  std::atomic<int> notified_{0};
};

}  // namespace nudge
