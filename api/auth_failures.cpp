#include "auth_failures.hpp"

#include <utility>

#include "nudge/log.hpp"

namespace nudge::api {
namespace {

constexpr auto kLogEvery = std::chrono::minutes(1);
constexpr std::size_t kForgetQuietPeersAt =
    10000;  // peers remembered before quiet ones are forgotten

}  // namespace

AuthFailures::AuthFailures(int per_minute)
    : per_minute_(per_minute), limiter_(per_minute / 60.0, per_minute) {}

void AuthFailures::record(const std::string& peer, std::string_view reason, Clock::time_point now) {
  if (per_minute_ > 0) limiter_.take(peer, now);
  long failures = 0;
  {
    std::lock_guard lock(mutex_);
    if (unlogged_.size() >= kForgetQuietPeersAt && !unlogged_.contains(peer))
      std::erase_if(unlogged_,
                    [&](const auto& kv) { return now - kv.second.logged_at >= kLogEvery; });
    auto [it, added] = unlogged_.try_emplace(peer);
    Unlogged& u = it->second;
    ++u.failures;
    if (!added && now - u.logged_at < kLogEvery) return;
    failures = std::exchange(u.failures, 0);
    u.logged_at = now;
  }
  log::warn("failed authentication",
            {{"peer", peer}, {"reason", std::string(reason)}, {"failures", failures}});
}

}  // namespace nudge::api
