#include "auth_failures.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <utility>

#include "nudge/log.hpp"

namespace nudge::api {
namespace {

constexpr auto kLogEvery = std::chrono::minutes(1);
// Peers remembered before the quiet ones are forgotten.
constexpr std::size_t kForgetQuietPeersAt = 10000;
// Lines a minute for all peers together, so many addresses cannot flood the log.
constexpr int kLinesPerMinute = 60;

}  // namespace

std::string AuthFailures::peer_key(const std::string& address) {
  in6_addr a{};
  if (::inet_pton(AF_INET6, address.c_str(), &a) != 1 || IN6_IS_ADDR_V4MAPPED(&a)) return address;
  char key[sizeof "ffff:ffff:ffff:ffff::/64"];
  std::snprintf(key, sizeof key, "%x:%x:%x:%x::/64", a.s6_addr[0] << 8 | a.s6_addr[1],
                a.s6_addr[2] << 8 | a.s6_addr[3], a.s6_addr[4] << 8 | a.s6_addr[5],
                a.s6_addr[6] << 8 | a.s6_addr[7]);
  return key;
}

AuthFailures::AuthFailures(int per_minute)
    : per_minute_(per_minute),
      limiter_(per_minute / 60.0, per_minute),
      lines_(kLinesPerMinute / 60.0, kLinesPerMinute) {}

void AuthFailures::record(const std::string& address, std::string_view reason, bool looked_up,
                          Clock::time_point now) {
  const std::string peer = peer_key(address);
  if (looked_up && per_minute_ > 0) limiter_.take(peer, now);
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
    // Past the lines of the minute, the count waits for this peer's next line.
    if (lines_.take("", now) > 0) return;
    failures = std::exchange(u.failures, 0);
    u.logged_at = now;
  }
  log::warn("failed authentication",
            {{"peer", peer}, {"reason", std::string(reason)}, {"failures", failures}});
}

}  // namespace nudge::api
