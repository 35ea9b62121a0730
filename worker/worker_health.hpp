#pragma once
// What a worker's /readyz says beyond its database: whether its claims go through and whether
// its email relay answers. The claim loops report; the metrics listener reads. A worker whose
// login's statement_timeout cancels every claim, or whose relay refuses connections, looked
// ready while it did nothing, or failed every email it took (explore18a #1, #4).

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "nudge/health.hpp"

namespace nudge {

class WorkerHealth {
 public:
  using Clock = std::chrono::steady_clock;

  // A claim round of loop `owner` failed with `error` (no secret in it), or went through.
  void claim_failed(const std::string& owner, const std::string& error);
  void claim_went_through(const std::string& owner);
  // The worker's relay failed an attempt of loop `owner` (could not be reached or refused the
  // worker: `error` says how), or took a message again.
  void relay_failed(const std::string& owner, const std::string& error);
  void relay_answered();

  // "claims": fails once a loop's claims have failed for kClaimsFailingFor in a row;
  // "email-relay": fails while the relay fails the worker's emails.
  std::vector<health::CheckResult> checks() const;

  static constexpr std::chrono::seconds kClaimsFailingFor{10};

 private:
  struct Failing {
    Clock::time_point since;
    std::string error;
    int times = 0;
  };
  // One more failure of loop `owner`, the first one's time kept.
  void note(std::map<std::string, Failing>& failing, const std::string& owner,
            const std::string& error);

  mutable std::mutex mutex_;
  std::map<std::string, Failing> claims_;
  std::map<std::string, Failing> relay_;
};

}  // namespace nudge
