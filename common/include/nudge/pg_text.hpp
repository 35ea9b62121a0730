#pragma once
// PostgreSQL array literals, so a whole batch travels as one parameter per column.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nudge {

// '{1,2,3}'
std::string pg_array(const std::vector<std::int64_t>& values);
std::string pg_array(const std::vector<int>& values);
// '{"a","b\"c",NULL}': every element quoted and escaped; nullopt becomes NULL.
std::string pg_array(const std::vector<std::optional<std::string>>& values);
std::string pg_array(const std::vector<std::string>& values);

}  // namespace nudge
