#pragma once
// A token bucket per key (a token's name), in this process's memory: each API process keeps its
// own buckets, so behind N processes a token may send up to N times the rate.

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nudge::api {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // `per_second` requests a second on average, `burst` at once; per_second 0: no limit.
  RateLimiter(int per_second, int burst) : rate_(per_second), burst_(burst) {}

  // Takes one request from the key's bucket: 0 when it had one, else the whole seconds (at
  // least 1) until it will.
  int take(const std::string& key, Clock::time_point now);

  int per_second() const { return static_cast<int>(rate_); }
  int burst() const { return static_cast<int>(burst_); }

 private:
  struct Bucket {
    double requests;  // what the bucket holds
    Clock::time_point at;
  };

  const double rate_;
  const double burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace nudge::api
