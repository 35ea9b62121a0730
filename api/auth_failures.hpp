#pragma once
// Failed authentications per peer address. A well-formed token the cache does not know costs a
// database lookup, and anyone can make well-formed tokens (the checksum is public), so a peer
// whose tokens keep failing is held back before that lookup, and each burst of failures is
// logged once, with the peer's address and never the token. Behind a proxy every client has the
// proxy's address: tokens the cache knows are still served, only lookups wait.

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "rate_limiter.hpp"

namespace nudge::api {

class AuthFailures {
 public:
  using Clock = RateLimiter::Clock;

  // `per_minute` failures a minute on average and at once; 0: no limit (failures still logged).
  explicit AuthFailures(int per_minute);

  // 0 when `peer` may have a token looked up; else the whole seconds until it may.
  int wait(const std::string& peer, Clock::time_point now) { return limiter_.wait(peer, now); }
  // Counts a failure of `peer`; the first failure after a quiet minute is logged with the count
  // of those since the last line.
  void record(const std::string& peer, std::string_view reason, Clock::time_point now);

  int per_minute() const { return per_minute_; }

 private:
  struct Unlogged {
    long failures = 0;
    Clock::time_point logged_at;
  };

  const int per_minute_;
  RateLimiter limiter_;
  std::mutex mutex_;
  std::unordered_map<std::string, Unlogged> unlogged_;
};

}  // namespace nudge::api
