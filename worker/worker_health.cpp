#include "worker_health.hpp"

#include <string>

namespace nudge {

namespace {

std::string seconds_since(WorkerHealth::Clock::time_point since) {
  return std::to_string(
             std::chrono::duration_cast<std::chrono::seconds>(WorkerHealth::Clock::now() - since)
                 .count()) +
         " s";
}

}  // namespace

void WorkerHealth::claim_failed(const std::string& owner, const std::string& error) {
  note(claims_, owner, error);
}

void WorkerHealth::claim_went_through(const std::string& owner) {
  std::lock_guard lock(mutex_);
  claims_.erase(owner);
}

void WorkerHealth::relay_failed(const std::string& owner, const std::string& error) {
  note(relay_, owner, error);
}

void WorkerHealth::relay_answered() {
  std::lock_guard lock(mutex_);
  relay_.clear();
}

void WorkerHealth::note(std::map<std::string, Failing>& failing, const std::string& owner,
                        const std::string& error) {
  std::lock_guard lock(mutex_);
  Failing& f = failing.try_emplace(owner, Failing{Clock::now(), {}, 0}).first->second;
  f.error = error;
  ++f.times;
}

std::vector<health::CheckResult> WorkerHealth::checks() const {
  std::lock_guard lock(mutex_);
  health::CheckResult claims{"claims", std::nullopt};
  for (const auto& [owner, f] : claims_) {
    if (Clock::now() - f.since < kClaimsFailingFor) continue;
    claims.failure = "the claims of " + owner + " have failed for " + seconds_since(f.since) +
                     " (" + std::to_string(f.times) + " in a row): " + f.error;
    break;
  }
  health::CheckResult relay{"email-relay", std::nullopt};
  if (!relay_.empty()) {
    const auto& [owner, f] = *relay_.begin();
    relay.failure = "cannot be reached or refuses this worker (" + owner + ") for " +
                    seconds_since(f.since) +
                    ", so it claims no emails meanwhile and they use no attempt: " + f.error;
  }
  return {claims, relay};
}

}  // namespace nudge
