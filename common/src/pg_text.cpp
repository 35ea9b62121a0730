#include "nudge/pg_text.hpp"

#include "nudge/utf8.hpp"

namespace nudge {

namespace {

template <typename Int>
std::string int_array(const std::vector<Int>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

void append_quoted(std::string& out, const std::string& value) {
  out += '"';
  for (const char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

std::string pg_array(const std::vector<std::int64_t>& values) {
  return int_array(values);
}
std::string pg_array(const std::vector<int>& values) {
  return int_array(values);
}

std::string pg_array(const std::vector<std::optional<std::string>>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    if (values[i])
      append_quoted(out, *values[i]);
    else
      out += "NULL";
  }
  out += '}';
  return out;
}

std::string pg_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    append_quoted(out, values[i]);
  }
  out += '}';
  return out;
}

std::string pg_array(const std::vector<std::optional<int>>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += values[i] ? std::to_string(*values[i]) : "NULL";
  }
  out += '}';
  return out;
}

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// What a one-line message shows in place of the character at `text[i]`, `n` bytes long; nullopt
// keeps it. C1 controls are U+0080..U+009F, encoded C2 80..C2 9F.
std::optional<std::string_view> line_replacement(std::string_view text, std::size_t i,
                                                 std::size_t n) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c == '\t' || c == '\n' || c == '\r') return std::string_view(" ");
  if (c < 0x20 || c == 0x7F) return kReplacement;
  if (n == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) return kReplacement;
  return std::nullopt;
}

std::string storable(std::string_view text, std::size_t max_bytes, bool one_line) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    // PostgreSQL text cannot hold NUL: it is replaced like an invalid sequence.
    const std::size_t n = text[i] == '\0' ? 0 : utf8::sequence_length(text, i);
    std::string_view add = n == 0 ? kReplacement : text.substr(i, n);
    if (n != 0 && one_line) add = line_replacement(text, i, n).value_or(add);
    if (out.size() + add.size() > max_bytes) break;
    out.append(add);
    i += n == 0 ? 1 : n;
  }
  return out;
}

}  // namespace

std::string storable_text(std::string_view text, std::size_t max_bytes) {
  return storable(text, max_bytes, false);
}

std::string storable_line(std::string_view text, std::size_t max_bytes) {
  return storable(text, max_bytes, true);
}

}  // namespace nudge
