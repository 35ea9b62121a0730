#include "nudge/secret_placeholders.hpp"

namespace nudge {

namespace {

constexpr std::string_view kPrefix = "secret.";

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

bool is_secret_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxSecretNameBytes) return false;
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

std::optional<HeaderTemplate> parse_header_template(std::string_view value, std::string& problem) {
  // The same reading as the database's (nudge.check_request_text): three braces in a row are
  // refused, so "{{" always opens a placeholder that the next "}}" closes.
  if (value.find("{{{") != std::string_view::npos || value.find("}}}") != std::string_view::npos) {
    problem = "has three braces in a row: a placeholder is {{name}}";
    return std::nullopt;
  }
  constexpr auto npos = std::string_view::npos;
  const auto stray = [&problem] {
    problem = "has a {{ or }} that does not close a placeholder";
    return std::nullopt;
  };
  HeaderTemplate parts;
  std::string text;
  for (std::size_t at = 0;;) {
    const std::size_t open = value.find("{{", at);
    const std::string_view before = value.substr(at, open == npos ? npos : open - at);
    if (before.find("}}") != npos) return stray();
    text += before;
    if (open == npos) break;
    const std::size_t close = value.find("}}", open + 2);
    if (close == npos) return stray();
    const std::string_view inner = value.substr(open + 2, close - open - 2);
    if (inner.find_first_of("{}") != npos) return stray();
    const std::string_view name = trim(inner);
    if (!name.starts_with(kPrefix) || !is_secret_name(name.substr(kPrefix.size()))) {
      problem = "{{" + std::string(name) +
                "}} cannot be used in a header: header values are text and {{secret.NAME}} "
                "(NAME: 1 to 64 lower-case letters, digits and _)";
      return std::nullopt;
    }
    parts.texts.push_back(std::move(text));
    text.clear();
    parts.secrets.emplace_back(name.substr(kPrefix.size()));
    at = close + 2;
  }
  parts.texts.push_back(std::move(text));
  return parts;
}

std::optional<std::string> secret_address_name(std::string_view address) {
  constexpr std::string_view kOpen = "{{secret.";
  if (!address.starts_with(kOpen) || !address.ends_with("}}")) return std::nullopt;
  const std::string_view name = address.substr(kOpen.size(), address.size() - kOpen.size() - 2);
  if (!is_secret_name(name)) return std::nullopt;
  return std::string(name);
}

}  // namespace nudge
