#include "json_text.hpp"

#include <array>
#include <cstdio>
#include <cstring>

namespace nudge::api {
namespace {

// The bytes a JSON string escapes: control characters, quotes and backslashes.
constexpr std::array<bool, 256> kEscaped = [] {
  std::array<bool, 256> escaped{};
  for (int c = 0; c < 0x20; ++c) escaped[static_cast<std::size_t>(c)] = true;
  escaped['"'] = escaped['\\'] = true;
  return escaped;
}();

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  std::size_t first = 0;  // the first byte to escape
  while (first < text.size() && !kEscaped[static_cast<unsigned char>(text[first])]) ++first;
  if (first == text.size()) {
    // The usual case, nothing to escape: the quotes and the text written in one step (the live
    // stream writes some 35 strings and keys a fire).
    const std::size_t at = out.size();
    out.resize(at + text.size() + 2);
    char* to = out.data() + at;
    to[0] = '"';
    if (!text.empty()) std::memcpy(to + 1, text.data(), text.size());
    to[text.size() + 1] = '"';
    return;
  }
  out += '"';
  std::size_t from = 0;  // the start of the run of characters copied as they are
  for (std::size_t i = first; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) continue;
    out.append(text.data() + from, i - from);
    from = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
        out += escaped;
      }
    }
  }
  out.append(text.data() + from, text.size() - from);
  out += '"';
}

}  // namespace nudge::api
