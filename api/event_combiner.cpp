#include "event_combiner.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <pqxx/pqxx>
#include <stdexcept>
#include <thread>

#include "caller.hpp"
#include "nudge/database.hpp"
#include "route_support.hpp"

namespace nudge::api {

struct EventCombiner::Waiter {
  const EventInput* event = nullptr;
  std::string caller;       // the token's name: one transaction speaks for one caller
  bool leading = false;     // handed a free transaction: records its own batch
  bool finished = false;    // answered, failed, or told to record alone
  bool alone = false;       // its shared transaction failed: record it on its own
  std::exception_ptr held;  // alone, it waited for a row another transaction holds
  EmittedEvent answer;
  std::exception_ptr error;
  std::condition_variable wake;
};

EventCombiner::EventCombiner(ConnectionPool& pool, std::size_t transactions, int lock_timeout_ms,
                             metrics::Registry& registry)
    : pool_(pool),
      transactions_(transactions > 0
                        ? transactions
                        : std::max<std::size_t>(2, std::thread::hardware_concurrency())),
      shared_lock_wait_(std::to_string(
          lock_timeout_ms > 0 ? std::min(lock_timeout_ms, kSharedLockWait) : kSharedLockWait)),
      events_per_transaction_(registry.histogram(
          "nudge_api_event_transaction_events",
          "Single events (POST /v1/events) one transaction recorded: 1 alone, more when events "
          "waited for one of [database] event_transactions.",
          {1, 2, 4, 8, 16, 32, 64})),
      max_held_waits_(std::max(1, pool.size() / 4)),
      shared_failed_(registry.counter(
          "nudge_api_shared_event_transactions_failed_total",
          "Transactions of several single events that failed and wrote nothing, their events "
          "then recorded again one by one (an event a rule cannot fill, a lock wait, a "
          "deadlock).")),
      held_refused_(registry.counter(
          "nudge_api_held_events_refused_total",
          "Single events answered 503 at once because a row they change was held by another "
          "transaction while a quarter of [database] pool_size other events already waited for "
          "held rows.")) {}

EmittedEvent EventCombiner::emit(const EventInput& event) {
  Waiter me;
  me.event = &event;
  if (const Caller* caller = current_caller()) me.caller = caller->token;

  std::vector<Waiter*> batch;
  {
    std::unique_lock lock(mutex_);
    if (running_ < transactions_) {
      ++running_;
    } else {
      waiting_.push_back(&me);
      me.wake.wait(lock, [&] { return me.leading || me.finished; });
    }
    if (!me.finished) batch = take_batch(me);
  }
  if (!batch.empty()) {
    const auto started = std::chrono::steady_clock::now();
    record(batch);
    const std::chrono::duration<double, std::milli> took =
        std::chrono::steady_clock::now() - started;
    std::lock_guard lock(mutex_);
    if (std::none_of(batch.begin(), batch.end(), [](const Waiter* w) { return w->alone; }))
      learn_cost(me.caller, took.count() / static_cast<double>(batch.size()));
    // The transaction goes on to the oldest waiting event, which takes its caller's batch.
    if (waiting_.empty()) {
      --running_;
    } else {
      Waiter* next = waiting_.front();
      waiting_.pop_front();
      next->leading = true;
      next->wake.notify_one();
    }
    for (Waiter* w : batch) {
      w->finished = true;
      if (w != &me) w->wake.notify_one();
    }
  }
  if (me.alone) return record_outside(event, me.held);
  if (me.error) std::rethrow_exception(me.error);
  return std::move(me.answer);
}

// Called with mutex_ held: the leader and the waiting events of its caller, oldest first.
std::vector<EventCombiner::Waiter*> EventCombiner::take_batch(Waiter& leader) {
  std::vector<Waiter*> batch{&leader};
  std::size_t most = kMaxShared;
  if (const auto it = ms_per_event_.find(leader.caller); it != ms_per_event_.end())
    most = std::clamp<std::size_t>(static_cast<std::size_t>(kSharedBudgetMs / it->second), 1,
                                   kMaxShared);
  for (auto it = waiting_.begin(); it != waiting_.end() && batch.size() < most;) {
    if ((*it)->caller == leader.caller) {
      batch.push_back(*it);
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  return batch;
}

void EventCombiner::learn_cost(const std::string& caller, double ms) {
  ms = std::max(ms, 0.01);
  const auto [it, first] = ms_per_event_.try_emplace(caller, ms);
  if (!first) it->second = 0.8 * it->second + 0.2 * ms;  // the recent transactions weigh most
}

void EventCombiner::record(const std::vector<Waiter*>& batch) {
  events_per_transaction_.observe(static_cast<double>(batch.size()));
  if (batch.size() == 1) {
    try {
      batch[0]->answer = record_alone(*batch[0]->event, shared_lock_wait_);
    } catch (const pqxx::sql_error& e) {
      if (sqlstate_of(e) == "55P03") {
        batch[0]->alone = true;  // waits for the row again, without holding this place
        batch[0]->held = std::current_exception();
      } else {
        batch[0]->error = std::current_exception();
      }
    } catch (...) {
      batch[0]->error = std::current_exception();
    }
    return;
  }
  try {
    std::string items = "[";
    for (const Waiter* w : batch) {
      if (items.size() > 1) items += ',';
      items += w->event->to_json().dump();
    }
    items += ']';
    const auto rows = on_connection(pool_, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared("emit_events_each", items, shared_lock_wait_);
    });
    if (rows.size() != batch.size()) throw std::logic_error("emit_events_each: answers missing");
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->answer = EmittedEvent{rows[i][0].as<bool>(), rows[i][1].c_str()};
    }
  } catch (const pqxx::broken_connection&) {
    // Whether it committed is unknown, as for one event: each caller is told, none retried.
    for (Waiter* w : batch) w->error = std::current_exception();
  } catch (const pqxx::statement_completion_unknown&) {
    for (Waiter* w : batch) w->error = std::current_exception();  // likewise
  } catch (const pqxx::sql_error&) {
    // Nothing was written: each event on its own gets its own answer or error.
    shared_failed_.inc();
    for (Waiter* w : batch) w->alone = true;
  } catch (const pqxx::transaction_rollback&) {
    // A deadlock or a serialization failure (not sql_errors in libpqxx 6): rolled back too.
    shared_failed_.inc();
    for (Waiter* w : batch) w->alone = true;
  } catch (...) {
    for (Waiter* w : batch) w->error = std::current_exception();
  }
}

EmittedEvent EventCombiner::record_alone(const EventInput& event,
                                         const std::optional<std::string>& lock_wait) {
  const auto row = on_connection(pool_, [&](pqxx::nontransaction& tx) {
    return tx.exec_prepared1("emit_event", event.event_type, event.entity_type, event.entity_id,
                             event.data.dump(), event.key, event.occurred_at, lock_wait);
  });
  return EmittedEvent{row[0].as<bool>(), row[1].c_str()};
}

EmittedEvent EventCombiner::record_outside(const EventInput& event, std::exception_ptr held) {
  if (!held) {
    try {
      return record_alone(event, shared_lock_wait_);
    } catch (const pqxx::sql_error& e) {
      if (sqlstate_of(e) != "55P03") throw;
      held = std::current_exception();
    }
  }
  {
    std::lock_guard lock(mutex_);
    if (held_waits_ >= max_held_waits_) {
      held_refused_.inc();
      std::rethrow_exception(held);  // answered as the wait would have ended: 503, retry
    }
    ++held_waits_;
  }
  struct Done {
    EventCombiner& self;
    ~Done() {
      std::lock_guard lock(self.mutex_);
      --self.held_waits_;
    }
  } done{*this};
  return record_alone(event, std::nullopt);
}

}  // namespace nudge::api
