#include "nudge/secret_hosts.hpp"

#include <algorithm>
#include <cctype>

namespace nudge {
namespace {

std::string upper(std::string text) {
  for (char& c : text)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return text;
}

}  // namespace

std::optional<std::string> secret_host_problem(const std::string& pattern) {
  const std::string name = pattern.starts_with("*.") ? pattern.substr(2) : pattern;
  if (name.empty() || name.size() > 253) return "must be a host name of 1 to 253 characters";
  const bool ipv6 = name.front() == '[' && name.back() == ']' && !pattern.starts_with("*.");
  const bool ok = std::all_of(name.begin(), name.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           (ipv6 && (c == ':' || c == '[' || c == ']'));
  });
  if (!ok) {
    return "must be a host name (letters, digits, - and .), an address, or *. and a domain";
  }
  // "*.com" would let a header go to any host someone can register.
  if (pattern.starts_with("*.") && name.find('.') == std::string::npos)
    return "must name a domain with a dot after \"*.\" (\"*.example.com\")";
  return std::nullopt;
}

bool secret_may_go_to(const Secret& secret, std::string host) {
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!host.empty() && host.back() == '.') host.pop_back();
  return std::any_of(secret.hosts.begin(), secret.hosts.end(), [&](const std::string& pattern) {
    if (!pattern.starts_with("*.")) return host == pattern;
    const std::string domain = pattern.substr(1);  // ".example.com"
    return host.size() > domain.size() && host.ends_with(domain);
  });
}

std::string secret_host_refusal(const std::string& name, const std::string& host) {
  return "secret \"" + name + "\" may not be sent to " + (host.empty() ? "this target" : host) +
         " (a header sends a secret only to the hosts of [secret_hosts] " + name +
         ", NUDGE_SECRET_HOSTS_" + upper(name) + ")";
}

}  // namespace nudge
