#include "nudge/connection_options.hpp"

#include <cstdlib>
#include <string_view>
#include <utility>

namespace nudge {
namespace {

constexpr std::pair<std::string_view, std::string_view> kDefaults[] = {
    {"connect_timeout", "10"},    {"keepalives", "1"},       {"keepalives_idle", "15"},
    {"keepalives_interval", "5"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "30000"},
};

bool is_uri(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

// Whether `key` is set in the URI's query (key=... after ? or &).
bool uri_sets(std::string_view url, std::string_view key) {
  const auto query = url.find('?');
  if (query == std::string_view::npos) return false;
  std::string_view rest = url.substr(query + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view param = rest.substr(0, amp);
    if (param.starts_with(key) && param.size() > key.size() && param[key.size()] == '=')
      return true;
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return false;
}

bool left_to_environment(std::string_view key) {
  return key == "connect_timeout" && std::getenv("PGCONNECT_TIMEOUT") != nullptr;
}

}  // namespace

std::string with_connection_defaults(const std::string& url) {
  if (is_uri(url)) {
    std::string out = url;
    for (const auto& [key, value] : kDefaults) {
      if (uri_sets(url, key) || left_to_environment(key)) continue;
      out += out.find('?') == std::string::npos ? '?' : '&';
      out.append(key).append("=").append(value);
    }
    return out;
  }
  // key=value: of a keyword given twice libpq takes the last, so the URL's own come after.
  std::string out;
  for (const auto& [key, value] : kDefaults) {
    if (left_to_environment(key)) continue;
    out.append(key).append("=").append(value).append(" ");
  }
  return out + url;
}

}  // namespace nudge
