#include "worker.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "breaker_key.hpp"
#include "lifecycle.hpp"
#include "locked_outcomes.hpp"
#include "metrics_listener.hpp"
#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/pg_text.hpp"
#include "nudge/process_metrics.hpp"
#include "nudge/shutdown.hpp"
#include "relay_rest.hpp"
#include "slow_hosts.hpp"
#include "statement_cancel.hpp"
#include "transfers.hpp"
#include "worker_health.hpp"
#include "worker_metrics.hpp"

namespace nudge {

namespace {

using Clock = std::chrono::steady_clock;

// How long a stopping worker lets running deliveries end before it aborts them.

// Then how long its last round trips (recording, giving leases back) may wait for the database
// before their statements are cancelled (and again each second after).
constexpr std::chrono::seconds kLastRoundTrips{2};

// Milliseconds as seconds for people: "300", "0.4".
std::string seconds_text(int ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000);
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", ms / 1000.0);
  return text;
}

// The email relay's connections a claim loop may keep ([email] connections shared out among
// the loops): its Transfers' lanes, and so the emails it sends at once.
int email_lanes_per_loop(const Config& config) {
  return std::max(1, config.email.connections / std::max(1, config.worker.concurrency));
}

// Errors after which the connection is gone (or its last commit is in doubt): reconnect.
bool connection_lost(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return true;
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) return true;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    return state.rfind("08", 0) == 0 || state.rfind("57P0", 0) == 0;
  }
  return false;
}

// Errors that say something about one of the outcomes a finish records, not about the moment:
// an SQL error other than a lost connection, a conflict with another transaction (40: deadlock,
// serialization), a lock or statement timeout, a server short of resources (53, 58), all of
// which the same statement may get past when tried again, or a privilege this worker's login
// lacks (42501: every row fails alike until it is granted; setting rows aside would pause them).
bool outcome_error(const std::exception& e) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  if (sql == nullptr || connection_lost(e)) return false;
  const std::string state = sqlstate_of(*sql);
  for (const char* passing : {"40", "53", "58", "55P03", "57014", "42501"})
    if (state.rfind(passing, 0) == 0) return false;
  return true;
}

// What to look at when a statement was cancelled by a statement_timeout (57014), else null. A
// role's or database's reaches the worker's sessions: one short enough cancelled every claim,
// or the maintenance's pruning and lease work, said only as "canceling statement due to statement
// timeout" (explore18a #4, explore19a #7).
const char* statement_timeout_hint(const std::exception& e) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  if (sql == nullptr || sqlstate_of(*sql) != "57014") return nullptr;
  return "the statement_timeout of this login or its database cancelled it (SHOW "
         "statement_timeout): the worker's statements must be able to finish; ALTER ROLE <worker "
         "login> RESET statement_timeout, or set one of seconds";
}

// Sleeps up to `ms`, waking early on shutdown.
void interruptible_sleep(int ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (!shutdown_requested() && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 20)));
}

// When a stopping worker stops waiting for running deliveries: [worker] stop_grace_ms after the
// first thread that sees the shutdown request fixes it, the same moment for every thread.
class StopDeadline {
 public:
  explicit StopDeadline(std::chrono::milliseconds grace) : grace_(grace) {}
  Clock::time_point fix() {
    std::call_once(once_, [this] {
      at_ = Clock::now() + grace_;
      fixed_ = true;
    });
    return at_;
  }
  bool passed() const { return fixed_ && Clock::now() >= at_; }

 private:
  const std::chrono::milliseconds grace_;
  std::once_flag once_;
  Clock::time_point at_{};
  std::atomic<bool> fixed_{false};
};

// Leases each claim loop holds right now, for the heartbeat.
class InFlight {
 public:
  void set(const std::string& owner, std::vector<std::int64_t> ids) {
    std::lock_guard lock(mutex_);
    held_[owner] = std::move(ids);
  }
  void clear(const std::string& owner) {
    std::lock_guard lock(mutex_);
    held_.erase(owner);
  }
  std::map<std::string, std::vector<std::int64_t>> snapshot() {
    std::lock_guard lock(mutex_);
    return held_;
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [owner, ids] : held_) n += ids.size();
    return n;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::vector<std::int64_t>> held_;
};

// Claims, delivers and finishes, over and over; sleeps only when nothing is due. Up to
// [worker] deliveries_in_flight deliveries run at once: as soon as some end, they are recorded
// and their slots refilled in the same round trip, so a slow target holds back only itself.
class ClaimLoop {
 public:
  ClaimLoop(const Config& config, std::string owner, InFlight& in_flight,
            StopDeadline& stop_deadline, WorkerMetrics& metrics, WorkerHealth& health,
            RelayRest& relay_rest)
      : config_(config),
        owner_(std::move(owner)),
        in_flight_(in_flight),
        stop_deadline_(stop_deadline),
        metrics_(metrics),
        health_(health),
        relay_rest_(relay_rest),
        transfers_(static_cast<std::size_t>(email_lanes_per_loop(config))),
        channels_(make_channels(config, transfers_)),
        policy_(worker_policy(config)) {}

  void run() {
    while (!shutdown_requested()) {
      try {
        if (!session_) connect_and_recover();
        if (!session_) break;
        step();
      } catch (const std::exception& e) {
        on_failure(e);
      }
    }
    stop();
  }

  // From another thread: see Transfers::cut_connections().
  void cut_connections() { transfers_.cut_connections(); }

 private:
  int free_slots() const {
    return config_.worker.deliveries_in_flight - static_cast<int>(delivering_.size());
  }

  // Lanes no email holds: a claim takes no more emails, so none waits inside the worker, where
  // a cancel cannot reach it and a crash would charge it an attempt (explore16a #1, #4).
  int free_email_slots() const {
    const auto sending = std::count_if(delivering_.begin(), delivering_.end(), [](const auto& d) {
      return d.second.fire.channel == "email";
    });
    return relay_rest_.lanes(std::max(0, email_lanes_per_loop(config_) - static_cast<int>(sending)),
                             Clock::now());
  }

  // Whether a claim now would have room. A claim counts an attempt for every row it takes (so a
  // reminder that crashes its worker cannot loop forever): a loop claims no more than it can
  // start at once, or a crash would charge an attempt to rows it never sent, and refills its
  // slots a quarter at a time rather than with a round trip per delivery that ends. While its
  // claims bring only log lines (they take no slot and end at once), it claims whole batches,
  // of which the database leases no more webhooks and emails than the free slots.
  bool room_to_claim() const {
    const int free = free_slots();
    if (free <= 0) return false;
    return claims_log_only_ || delivering_.empty() ||
           free >= std::max(1, config_.worker.deliveries_in_flight / 4);
  }

  int claim_limit() const {
    if (!due_maybe_ || !waiting_.empty() || !room_to_claim()) return 0;
    return claims_log_only_ ? config_.worker.batch_size
                            : std::min(free_slots(), config_.worker.batch_size);
  }

  // One turn: record what ended and claim what the free slots can start (one round trip),
  // start those deliveries, then wait for a delivery to end, a wake-up or the next due time,
  // whichever comes first. Deliveries that cannot block (log) take no slot, so a log-only batch
  // is claimed, delivered and recorded whole.
  void step() {
    locked_.retry();
    give_back_relay_failed();
    const int limit = claim_limit();
    const int slots = free_slots();
    if (limit > 0 || record_due()) {
      std::vector<Fire> fires;
      const auto claim_sent = Clock::now();
      // While a host is slow, half of what is claimed comes from the others first (passing over
      // its due rows), then the rest in due order, its own included.
      const std::vector<std::string> pass_over =
          limit > 0 ? slow_host_patterns() : std::vector<std::string>{};
      const int first = pass_over.empty() ? limit : std::max(1, limit / 2);
      try {
        fires = session_->finish_and_claim(owner_, pending_, first, slots, free_email_slots(),
                                           policy_, pass_over);
      } catch (const std::exception& e) {
        if (pending_.empty()) throw;
        // Nothing was recorded or claimed: record what ended on its own (around rows another
        // transaction holds), then claim alone. (The common path stays one round trip: this
        // runs only when a finish fails.)
        bool claimed = false;
        if (rows_locked(e)) {
          claimed = finish_around_locks(e, limit, slots, fires);
        } else if (outcome_error(e)) {
          finish_one_by_one();
        } else {
          throw;
        }
        if (limit > 0 && !claimed)
          fires = session_->finish_and_claim(owner_, {}, limit, slots, free_email_slots(), policy_);
      }
      pending_.clear();
      first_pending_.reset();
      if (!pass_over.empty() && static_cast<int>(fires.size()) < limit)
        claim_more(limit, slots, fires);
      if (failures_ > 0) health_.claim_went_through(owner_);
      failures_ = 0;
      if (limit > 0) {
        metrics_.claimed(fires);
        log_taken_over(fires);
        const auto deliveries = std::count_if(fires.begin(), fires.end(),
                                              [](const Fire& f) { return f.channel != "log"; });
        if (!fires.empty()) claims_log_only_ = deliveries == 0;
        // A full batch, or all the slots filled, means more may be due right now; otherwise
        // ask when, once.
        due_maybe_ = static_cast<int>(fires.size()) == limit || deliveries >= slots;
        if (!due_maybe_) next_due_.reset();
      }
      if (!fires.empty() && waiting_.empty()) waiting_leased_at_ = claim_sent;
      for (auto& fire : fires) waiting_.push_back(std::move(fire));
    }
    if (!waiting_.empty()) {
      while (!waiting_.empty() && free_slots() > 0) {
        if (waiting_lease_lapsed()) {
          give_back_waiting();
          break;
        }
        Fire fire = std::move(waiting_.front());
        waiting_.pop_front();
        start(std::move(fire));
      }
      publish_in_flight();
      write_log_lines();
      // Deliveries that ended at once (the log channel) are recorded on the next turn, with
      // the next claim: no waiting in between.
      if (record_due()) return;
    }
    wait();
  }

  // The LIKE patterns of the slow hosts' targets (SlowHosts); each change is logged.
  std::vector<std::string> slow_host_patterns() {
    std::vector<SlowHosts::Running> running;
    for (const auto& [id, run] : delivering_) {
      if (run.fire.channel == "webhook" && run.fire.target)
        running.push_back({*run.fire.target, run.started});
    }
    std::vector<SlowHosts::Change> changes;
    auto patterns = slow_hosts_.patterns(running, Clock::now(), changes);
    for (const auto& c : changes) {
      // Named as the breaker names it: the origin may hold a target's user:password@.
      const std::string host = breaker_key(c.origin);
      if (c.slow) {
        nlohmann::json fields = {{"owner", owner_}, {"host", host}};
        if (c.average_seconds > 0) {
          fields["average_seconds"] = c.average_seconds;
        } else {
          fields["running_seconds"] = c.running_seconds;
        }
        log::info(
            "a webhook host is slow: this loop's claims take other hosts' due deliveries "
            "first",
            fields);
      } else {
        log::info("a webhook host is no longer slow", {{"owner", owner_}, {"host", host}});
      }
    }
    return patterns;
  }

  // Fills what the first claim (passing over slow hosts) left of `limit`, in due order.
  void claim_more(int limit, int slots, std::vector<Fire>& fires) {
    int deliveries = 0, emails = 0;
    for (const auto& f : fires) {
      deliveries += f.channel != "log" ? 1 : 0;
      emails += f.channel == "email" ? 1 : 0;
    }
    auto more = session_->finish_and_claim(owner_, {}, limit - static_cast<int>(fires.size()),
                                           std::max(0, slots - deliveries),
                                           std::max(0, free_email_slots() - emails), policy_);
    for (auto& f : more) fires.push_back(std::move(f));
  }

  // Whether the leases of the claimed fires not yet started may have run out: on this process's
  // own steady clock, most of lease_seconds since the claim was sent. A worker stopped (SIGSTOP,
  // a paused VM) between its claim and the start wrote 2,000 log lines 52 s later, after
  // another worker had taken them over or they were cancelled (explore16a #2).
  bool waiting_lease_lapsed() const {
    const auto lease = std::chrono::milliseconds(config_.worker.lease_seconds * 900);
    return Clock::now() - waiting_leased_at_ >= lease;
  }

  // Gives the leases of the fires not yet started back (where this worker still holds them: as
  // at a stop, no attempt is used) instead of starting them.
  void give_back_waiting() {
    std::vector<std::int64_t> ids;
    for (const auto& fire : waiting_) ids.push_back(fire.id);
    waiting_.clear();
    int released = 0;
    try {
      released = session_->release_leases(owner_, ids);
    } catch (const std::exception& e) {
      log::warn("could not give back leases that ran out before their deliveries started",
                {{"error", primary_message(database_error(e, config_.database.url))}});
    }
    log::warn(
        "claimed fires not started: their leases ran out first (was this worker stopped or "
        "paused?); other workers take them",
        {{"fires", static_cast<long long>(ids.size())}, {"released", released}});
  }

  // Gives back the leases of emails the relay failed (no attempt used): other workers take them,
  // or this one after its rest. Not given back (the database is away), their leases run out.
  void give_back_relay_failed() {
    if (relay_failed_.empty()) return;
    std::vector<std::int64_t> ids;
    ids.swap(relay_failed_);
    session_->release_leases(owner_, ids);
  }

  // Whether to record what ended now rather than with a later round trip: deliveries that end
  // one by one are recorded in groups (a round trip per delivery would cap a loop at ~1,000
  // deliveries/s), but never later than kRecordWithin after the first of them ended, nor
  // when nothing else is running.
  bool record_due() const {
    if (pending_.empty()) return false;
    if (delivering_.empty() && waiting_.empty()) return true;
    if (static_cast<int>(pending_.size()) >= kRecordBatch) return true;
    return first_pending_ && Clock::now() - *first_pending_ >= kRecordWithin;
  }

  void start(Fire fire) {
    const auto channel = channels_.find(fire.channel);
    const std::int64_t id = fire.id;
    auto [it, inserted] = delivering_.emplace(id, Delivering{std::move(fire), Clock::now()});
    if (!inserted) return;  // cannot happen: a reminder is leased to one loop once
    const Fire& f = it->second.fire;
    metrics_.started(f, std::chrono::system_clock::now());
    if (channel == channels_.end()) {
      ended(id, {false,
                 "channel " + f.channel + " cannot deliver in this version of nudge-worker",
                 std::nullopt,
                 {}});
      return;
    }
    try {
      channel->second->start(f, [this, id](Delivery d) { ended(id, std::move(d)); });
    } catch (const std::exception& e) {
      // A channel that throws before calling done (e.g. libcurl out of memory).
      if (delivering_.count(id) != 0)
        ended(id, {false, std::string("delivery failed: ") + e.what(), std::nullopt, {}});
    }
  }

  // A delivery ended: queue its outcome for the next round trip (or, when it ended after the
  // stop deadline, aborted or cut, give its lease back instead: it counts as no attempt).
  void ended(std::int64_t id, Delivery d) {
    auto node = delivering_.extract(id);
    if (node.empty()) return;
    Delivering& run = node.mapped();
    if (stop_deadline_.passed()) {
      // stop() releases every lease this loop still holds. (Cut by the main thread at the
      // deadline, most end here rather than in stop()'s own count.)
      ++aborted_;
      return;
    }
    if (run.fire.channel == "email") {
      due_maybe_ = true;  // a lane is free: emails a claim left due for want of one may go now
      note_relay(d);
    }
    // Not an attempt (the relay failed it, not the message): neither counted nor recorded; the
    // next turn gives it back.
    if (d.relay_failure != Delivery::RelayFailure::none) {
      relay_failed_.push_back(id);
      return;
    }
    const auto took = Clock::now() - run.started;
    metrics_.ended(run.fire, d, std::chrono::duration<double>(took).count());
    // A delivery this worker was too slow to drive says nothing of its host.
    if (run.fire.channel == "webhook" && run.fire.target && d.counts_for_host)
      slow_hosts_.ended(*run.fire.target, std::chrono::duration<double>(took).count(),
                        Clock::now());
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(took);
    // A receiver's Retry-After (an email's temporary refusal: 300 s) is waited for up to
    // [retry] max_delay_ms: the history says so beside what was asked (a year's Retry-After read
    // as if it were waited for), unless no attempt follows.
    if (d.retry_after_seconds && !ends_occurrence_failed(run.fire, d)) {
      const bool capped = *d.retry_after_seconds * 1000LL > config_.retry.max_delay_ms;
      if (capped) {
        d.error += " (the next attempt waits " + seconds_text(config_.retry.max_delay_ms) +
                   " s: [retry] max_delay_ms)";
      } else if (run.fire.channel == "email") {
        d.error += " (the next attempt waits " + std::to_string(*d.retry_after_seconds) + " s)";
      }
    }
    if (d.unreachable && is_free_try(run.fire, d))
      d.error +=
          " (the host could not be reached: this try uses none of the occurrence's attempts)";
    d.error = storable_line(d.error, 2000);
    d.response = storable_text(d.response, kMaxResponseBytes);
    if (!d.delivered) {
      // Channels keep secrets out of their errors; the database has the full record too. The
      // last attempt of an occurrence is a warning: it ends failed (explore18a #1).
      const bool last = ends_occurrence_failed(run.fire, d);
      nlohmann::json fields = {{"reminder_id", id},
                               {"attempt", run.fire.attempt},
                               {"of", run.fire.max_attempts},
                               {"channel", run.fire.channel},
                               {"status_code", d.status_code ? *d.status_code : 0},
                               {"error", d.error}};
      // The host as /v1/targets and the breaker's lines name it (no path, no password).
      if (run.fire.channel == "webhook" && run.fire.target)
        fields["host"] = breaker_key(*run.fire.target);
      if (last) {
        log::warn("delivery failed: the occurrence's last attempt", fields);
      } else {
        log::info("delivery attempt failed", fields);
      }
    }
    if (pending_.empty()) first_pending_ = Clock::now();
    const auto duration_ms =
        d.counts_for_host
            ? std::optional<int>(static_cast<int>(std::min<long long>(ms.count(), 1 << 30)))
            : std::nullopt;
    pending_.push_back(
        FireOutcome{id, run.fire.scheduled_for, run.fire.attempt, std::move(d), duration_ms});
  }

  // Deliveries another worker's lease held until it ran out: that worker stopped, froze or lost
  // the database, which nothing said but a counter (explore18a #5).
  void log_taken_over(const std::vector<Fire>& fires) const {
    std::vector<std::int64_t> ids;  // the first 20 of them
    long count = 0;
    for (const auto& f : fires) {
      if (!f.rescued) continue;
      if (++count <= 20) ids.push_back(f.id);
    }
    if (count == 0) return;
    // "owner" is this worker, which took them over; "reminders" says when it lists only some.
    log::warn(
        "took over deliveries whose lease had run out: the worker that held them stopped, "
        "froze or lost the database",
        {{"owner", owner_},
         {"count", count},
         {count > 20 ? "first_20_reminders" : "reminders", ids}});
  }

  // An email attempt ended: a relay that cannot be reached or refuses this worker rests the
  // worker's emails. (A connection the relay closed while idle says nothing of it.)
  void note_relay(const Delivery& d) {
    if (d.relay_failure == Delivery::RelayFailure::idle_connection) {
      log::info("the email relay had closed a connection kept for reuse: its email is sent again",
                {{"owner", owner_}, {"error", d.error}});
      return;
    }
    const bool failed = d.relay_failure == Delivery::RelayFailure::relay;
    switch (relay_rest_.ended(failed, Clock::now())) {
      case RelayRest::Change::began:
        log::warn(
            "the email relay cannot be reached or refuses this worker: it claims no emails for "
            "a while, other workers take them, and its emails use no attempt",
            {{"owner", owner_},
             {"rest_ms", relay_rest_.rest().count()},
             {"relay", redact_url(config_.email.smtp_url)},
             {"error", d.error}});
        health_.relay_failed(owner_, d.error);
        break;
      case RelayRest::Change::ended:
        log::info("the email relay takes messages again", {{"owner", owner_}});
        health_.relay_answered();
        break;
      case RelayRest::Change::none:
        if (failed) health_.relay_failed(owner_, d.error);
        break;
    }
  }

  void publish_in_flight() {
    std::vector<std::int64_t> ids;
    ids.reserve(delivering_.size() + waiting_.size());
    for (const auto& [id, run] : delivering_) ids.push_back(id);
    for (const auto& fire : waiting_) ids.push_back(fire.id);
    // Their leases must outlast the transaction that holds their rows.
    for (const std::int64_t id : locked_.ids()) ids.push_back(id);
    in_flight_.set(owner_, std::move(ids));
  }

  // Sleeps until something needs doing: a delivery ends (when any run), a wake-up arrives, the
  // next reminder is due, or shutdown. Never a poll: the due time comes from the database.
  void wait() {
    using std::chrono::microseconds;
    const bool no_room = !room_to_claim();
    // Microseconds, not milliseconds: rounding each sleep up to a whole millisecond would make
    // every timed fire up to 1 ms late.
    microseconds timeout{0};
    if (!due_maybe_ && !no_room) {
      if (!next_due_) {
        const double cap = config_.worker.idle_cap_seconds;
        const std::optional<double> due = session_->seconds_until_due();
        double seconds = due ? std::min(*due, cap) : cap;
        // Due now yet nothing claimed: another session holds those rows, a claim for a moment,
        // an application's open transaction as long as it likes. Asked again after a wait that
        // doubles up to kMaxHeldDueWait (at every 2 ms, 12 idle workers made 12,000 claims a
        // second while one due row stayed locked: explore16a #3); a wake-up still ends it.
        if (seconds <= 0) {
          seconds = held_due_wait_;
          held_due_wait_ = std::min(held_due_wait_ * 2, kMaxHeldDueWait);
        } else {
          held_due_wait_ = kFirstHeldDueWait;
        }
        next_due_ = Clock::now() + microseconds(static_cast<long long>(seconds * 1e6));
      }
      timeout = std::chrono::ceil<microseconds>(*next_due_ - Clock::now());
    } else if (no_room) {
      timeout = std::chrono::seconds(1);  // only deliveries ending free slots
    }
    if (first_pending_)
      timeout = std::min(
          timeout, std::chrono::ceil<microseconds>(*first_pending_ + kRecordWithin - Clock::now()));
    if (const auto retry = locked_.next_try())
      timeout = std::min(timeout, std::chrono::ceil<microseconds>(*retry - Clock::now()));
    timeout = std::max(timeout, microseconds{0});
    int woken = 0;
    if (delivering_.empty()) {
      if (timeout.count() > 0) woken = session_->wait(timeout.count() / 1e6, shutdown_fd());
    } else {
      std::vector<int> fds{shutdown_fd()};
      if (!no_room) fds.push_back(session_->socket());
      transfers_.run(
          static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(timeout).count()), fds);
      publish_in_flight();
    }
    if (no_room) return;
    woken += session_->take_notifications();
    if (woken > 0 || (next_due_ && Clock::now() >= *next_due_)) {
      due_maybe_ = true;
      next_due_.reset();
    }
  }

  void connect_and_recover() {
    int backoff_ms = 100;
    while (!shutdown_requested()) {
      try {
        session_ = std::make_unique<LifecycleSession>(config_.database.url, owner_);
        break;
      } catch (const std::exception& e) {
        log::warn(
            "database unreachable, retrying",
            {{"retry_in_ms", backoff_ms}, {"error", database_error(e, config_.database.url)}});
        pause_delivering(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, config_.worker.reconnect_max_ms);
      }
    }
    if (!session_) return;
    due_maybe_ = true;
    next_due_.reset();
    // Whatever we delivered is recorded now, and any lease we may still hold (a claim whose
    // answer was lost with the connection) goes back at once instead of waiting to expire.
    // Deliveries still running keep their leases: they are recorded when they end.
    // On the first connection there is nothing to give back: the owner id is new with this process.
    if (!connected_once_) {
      connected_once_ = true;
      return;
    }
    finish_pending();
    int released = 0;
    if (delivering_.empty()) released = release_leases_not_kept();
    log::info("reconnected to the database", {{"owner", owner_}, {"released", released}});
  }

  // Gives back every lease this loop holds but those of outcomes kept to be recorded later (a
  // finish refused for a row another transaction held: ci206 gave one back at a reconnect, and
  // 100 log lines were claimed and written again at once, as first attempts).
  int release_leases_not_kept() { return session_->release_leases_except(owner_, locked_.ids()); }

  // After a finish found a row another transaction holds: tried whole once more, since most such
  // holders are another worker's claim that ends within milliseconds (recording one by one at
  // each cost the 2-worker drain a fifth of its rate); then what ended is recorded around the
  // held rows, and the claim goes alone. True when the retry went through, claim and all.
  bool finish_around_locks(const std::exception& first, int limit, int slots,
                           std::vector<Fire>& fires) {
    try {
      fires =
          session_->finish_and_claim(owner_, pending_, limit, slots, free_email_slots(), policy_);
      pending_.clear();
      return true;
    } catch (const std::exception& e) {
      if (!rows_locked(e)) throw;
    }
    locked_.add(std::exchange(pending_, {}), first);
    return false;
  }

  // Records what ended in one round trip, or one by one when that fails on an outcome.
  void finish_pending() {
    try {
      session_->finish(owner_, pending_, policy_);
    } catch (const std::exception& e) {
      if (rows_locked(e)) {
        locked_.add(std::exchange(pending_, {}), e);
        first_pending_.reset();
        return;
      }
      if (!outcome_error(e)) throw;
      finish_one_by_one();
      return;
    }
    pending_.clear();
    first_pending_.reset();
  }

  // After a finish of several outcomes failed on one of them: records each in its own
  // transaction, so one row the SQL cannot finish does not keep the others (and this loop's
  // next claim) from ever being recorded; what cannot be recorded is set aside and dropped.
  // Another kind of error stops it, keeping the outcomes not recorded yet for the next try.
  void finish_one_by_one() {
    std::size_t done = 0;
    try {
      for (; done < pending_.size(); ++done) {
        try {
          session_->finish(owner_, {pending_[done]}, policy_);
        } catch (const std::exception& e) {
          if (!outcome_error(e)) throw;
          set_aside(pending_[done], e);
        }
      }
    } catch (...) {
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
      throw;
    }
    pending_.clear();
    first_pending_.reset();
  }

  // An outcome the database refuses to record whatever the moment: its delivery happened, but
  // neither its attempt nor the reminder's next occurrence can be written. Giving its lease back
  // would have it claimed and delivered again at once, forever; left to expire, it would be
  // delivered again every lease_seconds, and once its attempts are used up the claim that
  // records it as abandoned fails on the same row, for every worker. Paused (which decides no
  // next occurrence) with its lease given back, it is out of circulation until someone who has
  // read this error resumes it; then it is claimed at once and delivered again (at least once:
  // this delivery was never recorded). If even the pause fails, its lease is left to expire.
  void set_aside(const FireOutcome& outcome, const std::exception& e) {
    std::string action = "paused";
    try {
      session_->pause_and_release(outcome.id, owner_);
    } catch (const std::exception& pause_error) {
      // A lost connection shows again at the next statement, which reconnects.
      action = "not paused (" + redact(pause_error.what(), config_.database.url) +
               "); its lease is left to expire";
    }
    log::error("cannot record a delivery; the reminder is set aside",
               {{"owner", owner_},
                {"reminder_id", outcome.id},
                {"scheduled_for", rfc3339_from_pg(outcome.scheduled_for)},
                {"attempt", outcome.attempt},
                {"delivered", outcome.delivery.delivered},
                {"action", action},
                {"error", primary_message(database_error(e, config_.database.url))}});
  }

  void on_failure(const std::exception& e) {
    session_.reset();
    ++failures_;
    const int backoff_ms =
        std::min(config_.worker.reconnect_max_ms, 100 * (1 << std::min(failures_, 10)));
    // The first line only: PostgreSQL's CONTEXT would repeat kilobytes of function text.
    const std::string first_line = primary_message(database_error(e, config_.database.url));
    if (connection_lost(e)) {
      log::warn("lost the database connection",
                {{"owner", owner_}, {"error", database_error(e, config_.database.url)}});
    } else if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
      // A deadlock or serialization failure rolled the round back whole: nothing was lost, and
      // what ended is recorded by the next round.
      log::warn("a round conflicted with another transaction; trying again",
                {{"owner", owner_}, {"error", first_line}});
    } else {
      nlohmann::json fields = {{"owner", owner_}, {"error", first_line}};
      if (const std::string hint = session_not_kept_hint(e); !hint.empty()) fields["hint"] = hint;
      if (const char* hint = statement_timeout_hint(e)) fields["hint"] = hint;
      log::error("claim loop error", std::move(fields));
    }
    health_.claim_failed(owner_, first_line);
    pause_delivering(backoff_ms);
  }

  // Waits `ms` (less on shutdown) without the database, driving the deliveries under way, so
  // they end as they would have (an answer taken when it arrives, a timeout counted against the
  // receiver's silence only); their outcomes are recorded once the database is back. Nothing new
  // starts: the leases may lapse meanwhile.
  void pause_delivering(int ms) {
    const auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (!shutdown_requested() && Clock::now() < until) {
      if (delivering_.empty()) {
        interruptible_sleep(static_cast<int>(std::max<long long>(
            0,
            std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count())));
      } else {
        transfers_.run(50, {shutdown_fd()});
      }
    }
  }

  // Lets running deliveries end until the stop deadline, records what ended and gives back the
  // rest, so nothing waits for a lease to expire.
  void stop() {
    const auto deadline = stop_deadline_.fix();
    while (!delivering_.empty() && Clock::now() < deadline) transfers_.run(50, {});
    // Each delivery is either still running or ended past the deadline (counted as it ended).
    if (const int aborted = aborted_ + static_cast<int>(delivering_.size()); aborted > 0)
      log::info("aborting deliveries still running after the grace; their leases go back",
                {{"owner", owner_}, {"aborted", aborted}});
    transfers_.abort_all();
    in_flight_.clear(owner_);
    try {
      if (!session_) session_ = std::make_unique<LifecycleSession>(config_.database.url, owner_);
      finish_pending();
      locked_.retry(true);
      if (!locked_.empty()) {
        log::warn(
            "stopping with ended attempts not recorded: another transaction still holds their "
            "reminders; their leases will expire, and those not stopped are delivered again",
            {{"owner", owner_}, {"reminders", locked_.ids()}});
      }
      release_leases_not_kept();
    } catch (const std::exception& e) {
      // The first line only: PostgreSQL's CONTEXT would repeat the function's text.
      log::warn(
          "could not record the last fires before stopping; their leases will expire",
          {{"owner", owner_}, {"error", primary_message(database_error(e, config_.database.url))}});
    }
    session_.reset();
  }

  struct Delivering {
    Fire fire;
    Clock::time_point started;
  };

  static constexpr int kRecordBatch = 64;
  static constexpr std::chrono::milliseconds kRecordWithin{20};
  static constexpr double kFirstHeldDueWait = 0.002;  // seconds
  static constexpr double kMaxHeldDueWait = 0.1;

  const Config& config_;
  const std::string owner_;
  InFlight& in_flight_;
  StopDeadline& stop_deadline_;
  WorkerMetrics& metrics_;
  WorkerHealth& health_;
  RelayRest& relay_rest_;
  // Emails whose attempt the relay failed without taking the message: their leases are given
  // back, using no attempt, at the start of the next turn.
  std::vector<std::int64_t> relay_failed_;
  SlowHosts slow_hosts_;
  // Declared before channels_: channels hold a reference to it.
  Transfers transfers_;
  Channels channels_;
  WorkerPolicy policy_;
  std::unique_ptr<LifecycleSession> session_;
  std::deque<Fire> waiting_;                       // claimed, not started (no free slot yet)
  Clock::time_point waiting_leased_at_{};          // when their claim was sent
  std::map<std::int64_t, Delivering> delivering_;  // started, not ended
  std::vector<FireOutcome> pending_;               // ended, not yet recorded
  LockedOutcomes locked_{
      owner_, [this](const std::vector<FireOutcome>& o) { session_->finish(owner_, o, policy_); },
      [this](const FireOutcome& o, const std::exception& e) {
        if (!outcome_error(e)) return false;
        set_aside(o, e);
        return true;
      },
      [this](const std::vector<std::int64_t>& ids) { return session_->free_of_locks(ids); }};
  std::optional<Clock::time_point> first_pending_;  // when the oldest of them ended
  bool due_maybe_ = true;                           // a claim could find work right now
  bool claims_log_only_ = false;                    // the last claim brought only log lines
  int aborted_ = 0;                                 // deliveries that ended past the deadline
  std::optional<Clock::time_point> next_due_;       // when it could, if not now
  double held_due_wait_ = kFirstHeldDueWait;        // next wait while due rows are held
  int failures_ = 0;
  bool connected_once_ = false;
};

// Blocks until SIGTERM or SIGINT.
void wait_for_shutdown_request() {
  pollfd shutdown{shutdown_fd(), POLLIN, 0};
  while (!shutdown_requested()) ::poll(&shutdown, 1, 1000);
}

// Extends the leases of long deliveries, records what dead workers left of stopped reminders
// and prunes old history; never claims.
class Maintenance {
 public:
  Maintenance(const Config& config, const std::string& worker_id, InFlight& in_flight,
              metrics::Registry& registry)
      : config_(config),
        worker_id_(worker_id),
        in_flight_(in_flight),
        policy_(worker_policy(config)),
        failures_(registry.counter(
            "nudge_worker_maintenance_failures_total",
            "Maintenance turns of this worker (extending leases, recording what dead workers left, "
            "pruning) that failed; each is tried again a turn later.")),
        last_success_(registry.gauge(
            "nudge_worker_maintenance_last_success_timestamp_seconds",
            "When this worker's maintenance last succeeded, in seconds since the Unix epoch (0: "
            "not yet).")) {}

  void run() {
    const auto tick = std::chrono::milliseconds(config_.worker.lease_seconds * 1000 / 3);
    auto next_prune = Clock::now() + std::chrono::seconds(5);
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      cv_.wait_for(lock, tick, [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      const auto turn = [&] {
        if (!session_)
          session_ = std::make_unique<LifecycleSession>(config_.database.url,
                                                        worker_id_ + "/maintenance", false);
        heartbeat();
        stop_if_the_schema_is_too_new();
        record_abandoned();
        if (Clock::now() >= next_prune) {
          prune();
          next_prune = Clock::now() + std::chrono::seconds(config_.history.prune_interval_seconds);
        }
      };
      try {
        try {
          turn();
        } catch (const std::exception& e) {
          // A connection lost since the last turn (PostgreSQL restarted meanwhile) is replaced
          // at once: the leases to extend cannot wait a turn, and nothing is wrong any more.
          session_.reset();
          if (!connection_lost(e)) throw;
          turn();
        }
        last_success_.set(
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                .count());
      } catch (const std::exception& e) {
        session_.reset();
        failures_.inc();
        nlohmann::json fields = {
            {"error", primary_message(database_error(e, config_.database.url))}};
        if (const char* hint = statement_timeout_hint(e)) fields["hint"] = hint;
        log::warn("maintenance failed; will retry", std::move(fields));
      }
      lock.lock();
    }
    session_.reset();
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
  }

  // Whether the worker stopped because a migration it cannot work with landed (exit status 2,
  // as at a start against such a schema).
  bool schema_too_new() const { return schema_too_new_.load(); }

 private:
  // A breaking migration that landed while this worker runs: it would claim and finish with
  // statements the schema no longer means, so it stops as a start would have refused.
  void stop_if_the_schema_is_too_new() {
    if (schema_too_new_.load()) return;
    const auto problem = session_->newer_breaking_migration();
    if (!problem) return;
    schema_too_new_.store(true);
    log::error(
        "a migration this binary cannot work with has landed: the worker stops (start "
        "the upgraded one)",
        {{"error", *problem}});
    request_shutdown();
  }

  void heartbeat() {
    for (const auto& [owner, ids] : in_flight_.snapshot())
      if (!ids.empty()) session_->extend_leases(owner, ids, config_.worker.lease_seconds);
  }

  // Occurrences of reminders stopped while a worker that then died held them: no claim takes a
  // stopped reminder, so they are recorded here once their lease expires.
  void record_abandoned() {
    const int recorded = session_->finish_abandoned(worker_id_ + "/maintenance", policy_);
    if (recorded > 0) {
      log::warn("recorded occurrences of stopped reminders whose worker died mid-delivery",
                {{"occurrences", recorded}});
    }
  }

  void prune() {
    // Rows of each kind per transaction: every pass reads the finished reminders and events
    // whole to find old ones, so small passes made a first prune of 28.6 million rows take 13.7
    // minutes, at 10,000 rows a pass once reminders and events had none left (explore17b #2).
    constexpr int kBatch = 50000;
    int total = 0;
    for (int n = kBatch; n >= kBatch && !stopping_;) {
      n = session_->prune_history(config_.history.retention_days, kBatch);
      total += n;
    }
    if (total > 0) log::info("pruned history", {{"rows", total}});
  }

  const Config& config_;
  const std::string worker_id_;
  InFlight& in_flight_;
  const WorkerPolicy policy_;
  metrics::Counter& failures_;
  metrics::Gauge& last_success_;
  std::unique_ptr<LifecycleSession> session_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> schema_too_new_{false};
};

}  // namespace

int run_worker(const Config& config, const std::string& worker_id) {
  install_shutdown_handlers();
  InFlight in_flight;
  metrics::Registry registry;
  WorkerMetrics worker_metrics(registry);
  registry.gauge_fn("nudge_worker_deliveries_in_flight",
                    "Fires this worker claimed and has not delivered yet (waiting for a free "
                    "delivery slot, or being delivered).",
                    [&in_flight] { return static_cast<double>(in_flight.count()); });
  metrics::add_process_metrics(registry);
  WorkerHealth health;
  std::optional<MetricsListener> listener;
  if (config.worker.metrics_port != 0) {
    listener.emplace(config, registry, worker_id + "/metrics", health);
    if (const auto problem = listener->start()) {
      log::error("cannot listen for metrics", {{"address", config.worker.metrics_address},
                                               {"port", config.worker.metrics_port},
                                               {"error", *problem}});
      return 1;
    }
    log::info("metrics listening",
              {{"address", config.worker.metrics_address}, {"port", config.worker.metrics_port}});
  }
  Maintenance maintenance(config, worker_id, in_flight, registry);
  std::future<void> maintaining =
      std::async(std::launch::async, [&maintenance]() noexcept { maintenance.run(); });

  // Each loop owns its leases under its own name, so recovering one never touches another's.
  StopDeadline stop_deadline(std::chrono::milliseconds(config.worker.stop_grace_ms));
  std::vector<std::unique_ptr<ClaimLoop>> loops;
  RelayRest relay_rest;  // the relay is the worker's: its loops rest together
  for (int i = 0; i < config.worker.concurrency; ++i)
    loops.push_back(std::make_unique<ClaimLoop>(config, worker_id + "/" + std::to_string(i),
                                                in_flight, stop_deadline, worker_metrics, health,
                                                relay_rest));
  std::vector<std::future<void>> running;
  for (auto& loop : loops)  // noexcept: an escaping exception ends the process, as on a thread
    running.push_back(std::async(std::launch::async, [&loop = *loop]() noexcept { loop.run(); }));
  if (config.webhook.secret.empty())
    log::warn("webhook requests go out unsigned: set NUDGE_WEBHOOK_SECRET (16+ characters)");
  log::info("worker started", {{"concurrency", config.worker.concurrency},
                               {"batch_size", config.worker.batch_size},
                               {"lease_seconds", config.worker.lease_seconds}});

  // Each loop stops by itself, but libcurl can block one of its lanes inside a transfer, out of
  // reach of the loop's own grace (SMTP waits for the reply to the end of data inside
  // curl_multi_perform), and a stopping loop waits for its lanes: from the stop deadline on, the
  // connections of loops still running are cut, every 100 ms, until they have all returned.
  // A statement still waiting for the database after that (for a lock) is cancelled.
  wait_for_shutdown_request();
  auto cancel_at = stop_deadline.fix() + kLastRoundTrips;
  const auto cancel_if_late = [&] {
    if (Clock::now() < cancel_at) return;
    cancel_running_statements(config.database.url, worker_id);
    cancel_at = Clock::now() + std::chrono::seconds(1);
  };
  for (auto until = stop_deadline.fix();; until = Clock::now() + std::chrono::milliseconds(100)) {
    bool all_returned = true;
    for (std::size_t i = 0; i < loops.size(); ++i) {
      if (running[i].wait_until(until) == std::future_status::ready) continue;
      loops[i]->cut_connections();
      all_returned = false;
    }
    if (all_returned) break;
    cancel_if_late();
  }
  maintenance.stop();
  while (maintaining.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready)
    cancel_if_late();
  if (listener) listener->stop();
  log::info("worker stopped");
  return maintenance.schema_too_new() ? 2 : 0;
}

}  // namespace nudge
