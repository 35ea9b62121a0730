#include "breaker_key.hpp"

#include <algorithm>
#include <cctype>

namespace nudge {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

}  // namespace

std::string breaker_key(const std::string& address) {
  const auto sep = address.find("://");
  const bool scheme_ok =
      sep != std::string::npos && sep > 0 &&
      std::all_of(address.begin(), address.begin() + static_cast<std::ptrdiff_t>(sep),
                  [](unsigned char c) { return std::isalpha(c) != 0; });
  if (!scheme_ok) return lower(address);
  const std::string scheme = lower(address.substr(0, sep));
  std::size_t end = sep + 3;
  while (end < address.size() && address[end] != '/' && address[end] != '?' &&
         address[end] != '#' && !is_space(address[end]))
    ++end;
  std::string authority = address.substr(sep + 3, end - sep - 3);
  if (const auto at = authority.find('@'); at != std::string::npos)
    authority = authority.substr(at + 1);
  if (authority.empty()) return lower(address);
  std::string key = scheme + "://" + lower(authority);
  const auto bracket = authority.rfind(']');
  const auto colon = authority.rfind(':');
  const bool has_port =
      colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  if (!has_port && scheme == "https") key += ":443";
  if (!has_port && scheme == "http") key += ":80";
  return key;
}

}  // namespace nudge
