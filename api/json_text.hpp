#pragma once
// JSON written straight into a string, for answers and statement parameters the API assembles
// itself instead of building an nlohmann tree and dumping it.

#include <string>
#include <string_view>

namespace nudge::api {

// `text` (valid UTF-8) as a JSON string: quotes, backslashes and control characters escaped as
// nlohmann::json::dump and PostgreSQL's JSON output escape them, everything else as it is.
void append_json_string(std::string& out, std::string_view text);

}  // namespace nudge::api
