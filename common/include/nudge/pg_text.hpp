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

}  // namespace nudge
