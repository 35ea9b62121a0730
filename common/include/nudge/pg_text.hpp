#pragma once
// PostgreSQL array literals, so a whole batch travels as one parameter per column.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nudge {

// '{1,2,3}'
std::string pg_array(const std::vector<std::int64_t>& values);
std::string pg_array(const std::vector<int>& values);
// '{"a","b\"c",NULL}': every element quoted and escaped; nullopt becomes NULL.
std::string pg_array(const std::vector<std::optional<std::string>>& values);
std::string pg_array(const std::vector<std::string>& values);
// '{1,NULL,3}'
std::string pg_array(const std::vector<std::optional<int>>& values);

// `text` cut to at most `max_bytes` on a character boundary, made storable as PostgreSQL text:
// NUL bytes and invalid UTF-8 become U+FFFD, so bytes from the outside (a webhook receiver's
// answer) can never make a statement fail.
std::string storable_text(std::string_view text, std::size_t max_bytes);
// storable_text for a one-line message that quotes the outside (an error naming a receiver's
// header or reply): line breaks and tabs become spaces, and the other control characters (C0,
// DEL, C1) U+FFFD, so that no terminal that shows it (psql, a log tail) obeys an escape sequence
// a receiver sent (explore31d F11).
std::string storable_line(std::string_view text, std::size_t max_bytes);

}  // namespace nudge
