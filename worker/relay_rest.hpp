#pragma once
// A claim loop's email relay that cannot be reached (a refused connection, a name that does not
// resolve, not a word before the timeout, a failed TLS handshake): the loop claims no emails for a
// while, so that other workers take them. One worker with a wrong smtp_url failed a third of all
// emails within seconds, every retry landing on it as the loop that was free first
// (explore18a #1). The rest doubles while the relay stays away, up to a minute; then one email
// goes out as a probe, and any answer from the relay ends the rest.

#include <chrono>
#include <optional>

namespace nudge {

class RelayRest {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Change { none, began, ended };

  // How many of `lanes` a claim may fill with emails at `now`: none while resting, one (the
  // probe) once the rest is over and until the relay answers.
  int lanes(int lanes, Clock::time_point now) const;
  // An email attempt ended at `now`, the relay `reached` or not. An attempt claimed before the
  // rest began does not lengthen it.
  Change ended(bool reached, Clock::time_point now);
  std::chrono::milliseconds rest() const { return rest_; }

  static constexpr std::chrono::milliseconds kFirstRest{2000};
  static constexpr std::chrono::milliseconds kLongestRest{60000};

 private:
  std::optional<Clock::time_point> until_;
  std::chrono::milliseconds rest_{0};
};

}  // namespace nudge
