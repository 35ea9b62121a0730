#pragma once
// Whether a JSON number survives nlohmann::json's reading of it: a number that is not a 64-bit
// integer is read as a double, and 12345678901234567.89 would be stored as 12345678901234568.

#include <string_view>

namespace nudge::api {

// True when `value`, written back as nlohmann::json writes it (its shortest digits that read as it,
// then zeros up to the decimal point), is the number `text` (a valid JSON number) says:
// 0.1, 1.0E+2 and 1e30 are; 3.14159265358979323846, 1e-400 and 18446744073709551616 are not.
bool reads_exactly(double value, std::string_view text);

}  // namespace nudge::api
