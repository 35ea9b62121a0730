#include "nudge/email_address.hpp"

#include <cstring>

namespace nudge {
namespace {

constexpr std::size_t kMaxAddressBytes = 254;  // RFC 5321's path limit, less the brackets
constexpr std::size_t kMaxLocalBytes = 64;     // RFC 5321's local-part limit

}  // namespace

std::optional<std::string> email_address_problem(std::string_view address) {
  if (address.empty()) return "it is empty";
  if (address.size() > kMaxAddressBytes) return "it is longer than 254 characters";
  for (const char c : address) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r' || c == '\n') return "it contains a line break";
    if (c == ' ' || c == '\t') return "it contains white space";
    if (u < 0x20 || u == 0x7f) return "it contains a control character";
    if (u >= 0x80) return "it contains non-ASCII characters";
    if (std::strchr("<>()[]\\,;:\"", c) != nullptr) return std::string("it contains '") + c + "'";
  }
  const auto at = address.find('@');
  if (at == std::string_view::npos) return "it has no '@'";
  if (address.find('@', at + 1) != std::string_view::npos) return "it has more than one '@'";
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  if (local.empty()) return "it has nothing before the '@'";
  if (local.size() > kMaxLocalBytes) return "it has more than 64 characters before the '@'";
  if (domain.empty()) return "it has no domain after the '@'";
  for (const std::string_view part : {local, domain}) {
    if (part.front() == '.' || part.back() == '.' || part.find("..") != std::string_view::npos)
      return "it has a misplaced '.'";
  }
  return std::nullopt;
}

}  // namespace nudge
