#include "rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace nudge::api {
namespace {

// Past this many keys, a new key first sweeps out the full buckets (peers' addresses are many).
constexpr std::size_t kSweepAt = 10000;

}  // namespace

RateLimiter::Bucket& RateLimiter::refilled(const std::string& key, Clock::time_point now) {
  if (buckets_.size() >= kSweepAt && buckets_.find(key) == buckets_.end()) {
    std::erase_if(buckets_, [&](const auto& kv) {
      const double idle = std::chrono::duration<double>(now - kv.second.at).count();
      return kv.second.requests + idle * rate_ >= burst_;
    });
  }
  auto [it, added] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& bucket = it->second;
  if (!added) {
    const double elapsed = std::chrono::duration<double>(now - bucket.at).count();
    bucket.requests = std::min(burst_, bucket.requests + std::max(0.0, elapsed) * rate_);
    bucket.at = std::max(bucket.at, now);
  }
  return bucket;
}

int RateLimiter::seconds_until_one(const Bucket& bucket) const {
  if (bucket.requests >= 1) return 0;
  return std::max(1, static_cast<int>(std::ceil((1 - bucket.requests) / rate_)));
}

int RateLimiter::take(const std::string& key, Clock::time_point now) {
  if (rate_ <= 0) return 0;
  std::lock_guard lock(mutex_);
  Bucket& bucket = refilled(key, now);
  const int wait = seconds_until_one(bucket);
  if (wait == 0) bucket.requests -= 1;
  return wait;
}

int RateLimiter::wait(const std::string& key, Clock::time_point now) {
  if (rate_ <= 0) return 0;
  std::lock_guard lock(mutex_);
  return seconds_until_one(refilled(key, now));
}

}  // namespace nudge::api
