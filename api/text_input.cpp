#include "text_input.hpp"

#include "errors.hpp"
#include "nudge/utf8.hpp"

namespace nudge::api {
namespace {

constexpr const char* kHoldsNul = "must not contain U+0000 (NUL)";

// A key as a field's name: its NUL written \u0000, as in the JSON it came from.
std::string key_name(const std::string& key) {
  std::string out;
  for (const char c : key) out += c == '\0' ? std::string("\\u0000") : std::string(1, c);
  return out;
}

void check_no_nul_at(const nlohmann::json& value, const std::string& path) {
  if (value.is_string()) {
    if (value.get_ref<const std::string&>().find('\0') != std::string::npos)
      throw bad_field(path, "invalid_value", kHoldsNul);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i)
      check_no_nul_at(value[i], path + "[" + std::to_string(i) + "]");
  } else if (value.is_object()) {
    for (const auto& [key, member] : value.items()) {
      const std::string field = (path.empty() ? "" : path + ".") + key_name(key);
      if (key.find('\0') != std::string::npos) throw bad_field(field, "invalid_value", kHoldsNul);
      check_no_nul_at(member, field);
    }
  }
}

}  // namespace

std::string ascii_lower(std::string text) {
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

std::optional<std::string> text_problem(std::string_view text) {
  if (!utf8::valid(text)) return "must be valid UTF-8";
  if (text.find('\0') != std::string_view::npos) return kHoldsNul;
  return std::nullopt;
}

void check_text(const std::string& field, std::string_view text) {
  if (const auto problem = text_problem(text)) throw bad_field(field, "invalid_value", *problem);
}

void check_no_nul(const nlohmann::json& body) {
  check_no_nul_at(body, "");
}

}  // namespace nudge::api
