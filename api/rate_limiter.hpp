#pragma once
// A token bucket per key (a token's name, a peer's address), in this process's memory: each API
// process keeps its own buckets, so behind N processes a key may send up to N times the rate.

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nudge::api {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // `per_second` requests a second on average, `burst` at once; per_second 0: no limit.
  RateLimiter(double per_second, int burst) : rate_(per_second), burst_(burst) {}

  // Takes one request from the key's bucket: 0 when it had one, else the whole seconds (at
  // least 1) until it will.
  int take(const std::string& key, Clock::time_point now);
  // take() without taking: 0 when the key's bucket holds a request.
  int wait(const std::string& key, Clock::time_point now);

  int per_second() const { return static_cast<int>(rate_); }
  int burst() const { return static_cast<int>(burst_); }

 private:
  struct Bucket {
    double requests;  // what the bucket holds
    Clock::time_point at;
  };

  // The key's bucket, filled for the time since it was last used; full buckets are forgotten
  // once there are many keys (a full bucket and no bucket are the same).
  Bucket& refilled(const std::string& key, Clock::time_point now);
  int seconds_until_one(const Bucket& bucket) const;

  const double rate_;
  const double burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace nudge::api
