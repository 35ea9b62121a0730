#include "worker.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "lifecycle.hpp"
#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/shutdown.hpp"

namespace nudge {

namespace {

using Clock = std::chrono::steady_clock;

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

// Sleeps up to `ms`, waking early on shutdown.
void interruptible_sleep(int ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (!shutdown_requested() && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 20)));
}

// Leases each claim loop holds right now, for the heartbeat.
class InFlight {
 public:
  void set(const std::string& owner, const std::vector<Fire>& fires) {
    std::vector<std::int64_t> ids;
    ids.reserve(fires.size());
    for (const auto& f : fires) ids.push_back(f.id);
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

 private:
  std::mutex mutex_;
  std::map<std::string, std::vector<std::int64_t>> held_;
};

// Claims, delivers and finishes, over and over; sleeps only when nothing is due.
class ClaimLoop {
 public:
  ClaimLoop(const Config& config, std::string owner, InFlight& in_flight)
      : config_(config),
        owner_(std::move(owner)),
        in_flight_(in_flight),
        channels_(make_channels()),
        settings_{config.worker.batch_size, config.worker.lease_seconds,
                  config.retry.max_attempts} {}

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

 private:
  // One round trip: record what was delivered, take the next batch, deliver it (or sleep).
  void step() {
    std::vector<Fire> fires =
        session_->finish_and_claim(owner_, pending_, settings_.batch_size, settings_);
    pending_.clear();
    failures_ = 0;
    if (fires.empty()) {
      in_flight_.clear(owner_);
      sleep_until_due();
      return;
    }
    in_flight_.set(owner_, fires);
    deliver(fires);
  }

  void deliver(const std::vector<Fire>& fires) {
    std::vector<std::int64_t> undelivered;
    for (const auto& fire : fires) {
      if (shutdown_requested()) {
        undelivered.push_back(fire.id);
        continue;
      }
      pending_.push_back(deliver_one(fire));
    }
    std::fflush(stdout);
    if (!undelivered.empty()) session_->release_leases(owner_, undelivered);
  }

  FireOutcome deliver_one(const Fire& fire) {
    FireOutcome out{fire.id, fire.scheduled_for, fire.attempt, false, {}};
    const auto channel = channels_.find(fire.channel);
    if (channel == channels_.end()) {
      out.error = "channel " + fire.channel + " cannot deliver in this version of nudge-worker";
      return out;
    }
    try {
      const Delivery d = channel->second->deliver(fire);
      out.delivered = d.delivered;
      out.error = d.error;
    } catch (const std::exception& e) {
      out.error = std::string("delivery failed: ") + e.what();
    }
    return out;
  }

  void sleep_until_due() {
    const double cap = config_.worker.idle_cap_seconds;
    const std::optional<double> due = session_->seconds_until_due();
    double seconds = due ? std::min(*due, cap) : cap;
    // Due now yet nothing claimed: another worker's claim holds those rows for a moment.
    if (seconds <= 0) seconds = 0.002;
    session_->wait(seconds, shutdown_fd());
  }

  void connect_and_recover() {
    int backoff_ms = 100;
    while (!shutdown_requested()) {
      try {
        session_ = std::make_unique<LifecycleSession>(config_.database.url, owner_);
        break;
      } catch (const std::exception& e) {
        log::warn("database unreachable, retrying",
                  {{"retry_in_ms", backoff_ms}, {"error", redact(e.what(), config_.database.url)}});
        interruptible_sleep(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, config_.worker.reconnect_max_ms);
      }
    }
    if (!session_) return;
    // Whatever we delivered is recorded now, and any lease we may still hold (a claim whose
    // answer was lost with the connection) goes back at once instead of waiting to expire.
    // On the first connection there is nothing to give back: the owner id is new with this process.
    if (!connected_once_) {
      connected_once_ = true;
      return;
    }
    session_->finish_and_claim(owner_, pending_, 0, settings_);
    pending_.clear();
    const int released = session_->release_leases(owner_, std::nullopt);
    in_flight_.clear(owner_);
    log::info("reconnected to the database", {{"owner", owner_}, {"released", released}});
  }

  void on_failure(const std::exception& e) {
    session_.reset();
    ++failures_;
    const int backoff_ms =
        std::min(config_.worker.reconnect_max_ms, 100 * (1 << std::min(failures_, 10)));
    if (connection_lost(e)) {
      log::warn("lost the database connection",
                {{"owner", owner_}, {"error", redact(e.what(), config_.database.url)}});
    } else {
      log::error("claim loop error",
                 {{"owner", owner_}, {"error", redact(e.what(), config_.database.url)}});
    }
    interruptible_sleep(backoff_ms);
  }

  // Records what was delivered and gives back the rest, so nothing waits for a lease to expire.
  void stop() {
    in_flight_.clear(owner_);
    try {
      if (!session_) session_ = std::make_unique<LifecycleSession>(config_.database.url, owner_);
      session_->finish_and_claim(owner_, pending_, 0, settings_);
      pending_.clear();
      session_->release_leases(owner_, std::nullopt);
    } catch (const std::exception& e) {
      log::warn("could not record the last fires before stopping; their leases will expire",
                {{"owner", owner_}, {"error", redact(e.what(), config_.database.url)}});
    }
    session_.reset();
  }

  const Config& config_;
  const std::string owner_;
  InFlight& in_flight_;
  Channels channels_;
  ClaimSettings settings_;
  std::unique_ptr<LifecycleSession> session_;
  std::vector<FireOutcome> pending_;  // delivered, not yet recorded
  int failures_ = 0;
  bool connected_once_ = false;
};

// Extends the leases of long deliveries and prunes old history; never claims.
class Maintenance {
 public:
  Maintenance(const Config& config, const std::string& worker_id, InFlight& in_flight)
      : config_(config), worker_id_(worker_id), in_flight_(in_flight) {}

  void run() {
    const auto tick = std::chrono::milliseconds(config_.worker.lease_seconds * 1000 / 3);
    auto next_prune = Clock::now() + std::chrono::seconds(5);
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      cv_.wait_for(lock, tick, [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      try {
        if (!session_)
          session_ = std::make_unique<LifecycleSession>(config_.database.url,
                                                        worker_id_ + "/maintenance", false);
        heartbeat();
        if (Clock::now() >= next_prune) {
          prune();
          next_prune = Clock::now() + std::chrono::seconds(config_.history.prune_interval_seconds);
        }
      } catch (const std::exception& e) {
        session_.reset();
        log::warn("maintenance failed; will retry",
                  {{"error", redact(e.what(), config_.database.url)}});
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

 private:
  void heartbeat() {
    for (const auto& [owner, ids] : in_flight_.snapshot())
      if (!ids.empty()) session_->extend_leases(owner, ids, config_.worker.lease_seconds);
  }

  void prune() {
    constexpr int kBatch = 5000;
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
  std::unique_ptr<LifecycleSession> session_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace

int run_worker(const Config& config, const std::string& worker_id) {
  install_shutdown_handlers();
  InFlight in_flight;
  Maintenance maintenance(config, worker_id, in_flight);
  std::thread maintenance_thread([&] { maintenance.run(); });

  std::vector<std::thread> loops;
  for (int i = 0; i < config.worker.concurrency; ++i) {
    // Each loop owns its leases under its own name, so recovering one never touches another's.
    const std::string owner = worker_id + "/" + std::to_string(i);
    loops.emplace_back([&config, owner, &in_flight] { ClaimLoop(config, owner, in_flight).run(); });
  }
  log::info("worker started", {{"concurrency", config.worker.concurrency},
                               {"batch_size", config.worker.batch_size},
                               {"lease_seconds", config.worker.lease_seconds}});
  for (auto& t : loops) t.join();
  maintenance.stop();
  maintenance_thread.join();
  log::info("worker stopped");
  return 0;
}

}  // namespace nudge
