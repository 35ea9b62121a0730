#include "slow_hosts.hpp"

#include <algorithm>
#include <cctype>

namespace nudge {

void SlowHosts::ended(const std::string& target, double seconds, Clock::time_point now) {
  const std::string host = origin(target);
  if (host.empty()) return;
  const auto [it, first] = seen_.try_emplace(host, Seen{seconds, now});
  if (!first) {
    it->second.average_seconds = kWeight * seconds + (1 - kWeight) * it->second.average_seconds;
    it->second.last_ended = now;
  }
}

std::vector<std::string> SlowHosts::patterns(const std::vector<Running>& running,
                                             Clock::time_point now, std::vector<Change>& changes) {
  const double slow_seconds = std::chrono::duration<double>(kSlow).count();
  std::map<std::string, double> slow;         // origin -> average (0: a running delivery only)
  std::map<std::string, double> running_for;  // origin -> the longest running delivery's age
  for (auto it = seen_.begin(); it != seen_.end();) {
    if (now - it->second.last_ended >= kForgetAfter) {
      it = seen_.erase(it);
      continue;
    }
    if (it->second.average_seconds >= slow_seconds) slow[it->first] = it->second.average_seconds;
    ++it;
  }
  for (const auto& r : running) {
    if (now - r.started < kSlow) continue;
    const std::string host = origin(r.target);
    if (host.empty()) continue;
    slow.try_emplace(host, 0.0);
    double& age = running_for[host];
    age = std::max(age, std::chrono::duration<double>(now - r.started).count());
  }
  std::vector<std::string> out;
  std::set<std::string> now_slow;
  for (const auto& [host, average] : slow) {
    now_slow.insert(host);
    if (slow_.count(host) == 0)
      changes.push_back({host, true, average, average > 0 ? 0.0 : running_for[host]});
    for (auto& p : like_patterns(host)) out.push_back(std::move(p));
  }
  for (const auto& host : slow_) {
    if (now_slow.count(host) == 0) {
      const auto it = seen_.find(host);
      changes.push_back({host, false, it == seen_.end() ? 0.0 : it->second.average_seconds, 0.0});
    }
  }
  slow_ = std::move(now_slow);
  return out;
}

std::string SlowHosts::origin(const std::string& target) {
  const auto scheme_end = target.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0) return "";
  for (std::size_t i = 0; i < scheme_end; ++i) {
    const char c = target[i];
    if (!std::isalpha(static_cast<unsigned char>(c))) return "";
  }
  const auto end = target.find_first_of("/?#", scheme_end + 3);
  if (end == scheme_end + 3) return "";
  const std::string host = target.substr(0, end);
  // A secret's placeholder in the authority is no host (its value is the worker's to fill).
  if (host.find("{{") != std::string::npos) return "";
  return host;
}

std::vector<std::string> SlowHosts::like_patterns(const std::string& origin) {
  std::string escaped;
  for (const char c : origin) {
    if (c == '%' || c == '_' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return {escaped, escaped + "/%", escaped + "?%", escaped + "#%"};
}

}  // namespace nudge
