#pragma once
// Text from a request that PostgreSQL would refuse or misread, refused before it gets there with
// a 400 naming where it came from: bytes that are not UTF-8 (a path or query string can hold
// any byte; a JSON body's parser refuses them itself), and U+0000, which PostgreSQL text cannot
// hold and libpq takes as the end of a string ("a\u0000b" would be stored as "a").

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace nudge::api {

// `text` with A-Z made a-z and every other byte as it is (header values, host names, keywords).
std::string ascii_lower(std::string text);

// What is wrong with `text` ("must be valid UTF-8", "must not contain U+0000 (NUL)"), or nullopt.
std::optional<std::string> text_problem(std::string_view text);
// 400 naming `field` unless `text` is valid UTF-8 without U+0000.
void check_text(const std::string& field, std::string_view text);

// 400 naming the first string in `body`, value or key, that holds U+0000, by its path as fields
// are named (entity_id, payload.k, items[3].entity_id; a key's NUL written \u0000).
void check_no_nul(const nlohmann::json& body);

}  // namespace nudge::api
