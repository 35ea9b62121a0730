#pragma once
// A worker's email relay that cannot be reached (a refused connection, a name that does not
// resolve, not a word before the timeout, a failed TLS handshake) or refuses this worker (its
// greeting, hello, login or sender refused, a 421): the worker's loops claim no emails for a
// while, so that other workers take them, and the emails it had are given back without using an
// attempt (one worker with a wrong smtp_url failed a third of all emails within seconds,
// explore18a #1; a relay away for 15 s failed every email due then, each loop probing on its own
// with a real email's attempts, explore30a F7). The rest doubles while the relay stays away, up
// to a minute; then each loop sends one email as a probe, and an attempt the relay does not fail
// ends the rest. Shared by the worker's claim loops (thread-safe).

#include <chrono>
#include <mutex>
#include <optional>

namespace nudge {

class RelayRest {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Change { none, began, ended };

  // How many of `lanes` a claim may fill with emails at `now`: none while resting, one (the
  // probe) once the rest is over and until an attempt goes through.
  int lanes(int lanes, Clock::time_point now) const;
  // An email attempt ended at `now`, failed by the relay or not. An attempt claimed before the
  // rest began does not lengthen it.
  Change ended(bool relay_failed, Clock::time_point now);
  std::chrono::milliseconds rest() const;

  static constexpr std::chrono::milliseconds kFirstRest{2000};
  static constexpr std::chrono::milliseconds kLongestRest{60000};

 private:
  mutable std::mutex mutex_;
  std::optional<Clock::time_point> until_;
  std::chrono::milliseconds rest_{0};
};

}  // namespace nudge
