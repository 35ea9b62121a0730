#include "nudge/pg_text.hpp"

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

}  // namespace nudge
