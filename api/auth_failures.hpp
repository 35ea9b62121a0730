#pragma once
// Failed authentications per peer address. A well-formed token the cache does not know costs a
// database lookup, and anyone can make well-formed tokens (the checksum is public), so a peer
// whose tokens keep failing is held back before that lookup, and each burst of failures is
// logged once, with the peer's address and never the token. An IPv6 peer is its /64 (one host
// commonly holds all of it). Behind a proxy every client has the proxy's address: tokens the
// cache knows are still served, only lookups wait.

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

  // 0 when the peer at `address` may have a token looked up; else the whole seconds until it may.
  int wait(const std::string& address, Clock::time_point now) {
    return limiter_.wait(peer_key(address), now);
  }
  // Counts a failure of the peer at `address`; its first failure after a quiet minute is logged
  // with the count of those since its last line (at most 60 lines a minute for all peers). Only
  // a failed lookup (`looked_up`) uses up the peer's allowance: a malformed token costs nothing,
  // and counting it would lock out a mistyping user's neighbours behind the same address.
  void record(const std::string& address, std::string_view reason, bool looked_up,
              Clock::time_point now);

  // What failures are counted by: an IPv4 address as it is, an IPv6 one as its /64.
  static std::string peer_key(const std::string& address);

  int per_minute() const { return per_minute_; }

 private:
  struct Unlogged {
    long failures = 0;
    Clock::time_point logged_at;
  };

  const int per_minute_;
  RateLimiter limiter_;
  RateLimiter lines_;  // of the log, for all peers
  std::mutex mutex_;
  std::unordered_map<std::string, Unlogged> unlogged_;
};

}  // namespace nudge::api
