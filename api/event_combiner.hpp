#pragma once
// Single events posted at the same moment by one caller share one database transaction. Each
// POST /v1/events committing on its own session made 16 clients run 16 sessions at once, which
// on a small database server spent more time contending (CPU, the indexes' last pages, commits)
// than recording: measured on 2 cores, 924 events/s from 16 sessions, 1,510 from 2, and 1,670
// from 2 sessions recording 8 events each. So at most `transactions` sessions record single
// events at once; an event that arrives while they are busy waits, and the next free one takes
// every waiting event of the same caller (up to 64) in one call to
// nudge.emit_events_one_by_one. Alone, an event is recorded at once, as before.
//
// What a caller sees does not change: the same answer, created or replayed per key. When a
// shared transaction fails (one event's rule cannot be rendered, a deadlock), nothing of it was
// written and each of its events is recorded alone, so each gets its own answer or error. In one
// of those places a transaction waits at most kSharedLockWait for a row lock: an event whose flag
// an application's open transaction holds must not hold up every event behind it for
// [database] lock_timeout_ms; it waits that long again outside them, on its own. At most a
// quarter of the pool's connections wait so at once (kept for an event whose row is held): ten
// such events a second waiting 2 s each took every thread and connection from the others.
//
// A shared transaction lasts about kSharedBudgetMs at most: events whose rules make them slow
// (twenty remind rules, say) are taken a few at a time, from what that caller's recent
// transactions took per event. 64 of them in one transaction held a place for a second, and
// another token's single event waited that long behind it.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "input.hpp"
#include "nudge/metrics.hpp"
#include "nudge/pool.hpp"

namespace nudge::api {

struct EmittedEvent {
  bool created = false;
  std::string text;  // {"event": ..., "created": ..., "effects": [...]}
};

class EventCombiner {
 public:
  // `transactions`: at most that many at once; 0: as many as this host has CPUs, at least 2.
  // `lock_timeout_ms`: the sessions' own ([database] lock_timeout_ms; 0: none). Adds its
  // metrics (nudge_api_event_transaction_events, nudge_api_shared_event_transactions_failed_total,
  // nudge_api_held_events_refused_total) to `registry`.
  EventCombiner(ConnectionPool& pool, std::size_t transactions, int lock_timeout_ms,
                metrics::Registry& registry);
  EventCombiner(const EventCombiner&) = delete;
  EventCombiner& operator=(const EventCombiner&) = delete;

  // Records `event` for the caller this thread serves, as nudge.emit_event would answer it;
  // throws what a request on its own would (an ApiError, a pqxx error).
  EmittedEvent emit(const EventInput& event);

  // How many transactions record single events at once (0 in the settings resolved).
  std::size_t transactions() const { return transactions_; }

 private:
  struct Waiter;

  static constexpr std::size_t kMaxShared = 64;  // events one shared transaction records
  static constexpr int kSharedLockWait = 20;     // ms
  static constexpr double kSharedBudgetMs = 50;  // one shared transaction's aim

  std::vector<Waiter*> take_batch(Waiter& leader);
  // Called with mutex_ held: a transaction of `caller` took `ms` per event.
  void learn_cost(const std::string& caller, double ms);
  void record(const std::vector<Waiter*>& batch);
  // `lock_wait`: its lock_timeout in ms, or the session's.
  EmittedEvent record_alone(const EventInput& event, const std::optional<std::string>& lock_wait);
  // Out of the places: briefly, then (`held`: a row was held) for the session's lock_timeout if
  // fewer than max_held_waits_ events wait so, else `held` again at once.
  EmittedEvent record_outside(const EventInput& event, std::exception_ptr held);

  ConnectionPool& pool_;
  const std::size_t transactions_;
  const std::string shared_lock_wait_;  // lock_timeout of a shared transaction, in ms
  metrics::Histogram& events_per_transaction_;
  const int max_held_waits_;  // events waiting alone for a held row at once
  metrics::Counter& shared_failed_;
  metrics::Counter& held_refused_;
  std::mutex mutex_;
  std::size_t running_ = 0;                     // transactions recording events now
  std::deque<Waiter*> waiting_;                 // events waiting for one, oldest first
  int held_waits_ = 0;                          // events waiting alone for a held row now
  std::map<std::string, double> ms_per_event_;  // per caller, of its recent transactions
};

}  // namespace nudge::api
