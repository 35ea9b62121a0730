#include "relay_rest.hpp"

#include <algorithm>

namespace nudge {

int RelayRest::lanes(int lanes, Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (!until_) return lanes;
  if (now < *until_) return 0;
  return std::min(lanes, 1);
}

RelayRest::Change RelayRest::ended(bool relay_failed, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!relay_failed) {
    if (!until_) return Change::none;
    until_.reset();
    rest_ = std::chrono::milliseconds{0};
    return Change::ended;
  }
  if (until_ && now < *until_) return Change::none;
  const bool began = !until_;
  rest_ = began ? kFirstRest : std::min(rest_ * 2, kLongestRest);
  until_ = now + rest_;
  return began ? Change::began : Change::none;
}

std::chrono::milliseconds RelayRest::rest() const {
  std::lock_guard lock(mutex_);
  return rest_;
}

}  // namespace nudge
