#include "rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace nudge::api {

int RateLimiter::take(const std::string& key, Clock::time_point now) {
  if (rate_ <= 0) return 0;
  std::lock_guard lock(mutex_);
  auto [it, added] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& bucket = it->second;
  if (!added) {
    const double elapsed = std::chrono::duration<double>(now - bucket.at).count();
    bucket.requests = std::min(burst_, bucket.requests + std::max(0.0, elapsed) * rate_);
    bucket.at = std::max(bucket.at, now);
  }
  if (bucket.requests >= 1) {
    bucket.requests -= 1;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1 - bucket.requests) / rate_)));
}

}  // namespace nudge::api
