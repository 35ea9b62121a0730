#include "json_number.hpp"

#include <nlohmann/json.hpp>
#include <string>

namespace nudge::api {
namespace {

// A decimal number as its significant digits (no leading or trailing zeros) and the power of
// ten of the digit after the last: "120.50" is {"1205", -1}; zero is {"", 0} whatever its sign.
struct Decimal {
  bool negative = false;
  std::string digits;
  long exponent = 0;
  bool operator==(const Decimal&) const = default;
};

Decimal decimal_of(std::string_view text) {
  Decimal d;
  std::size_t i = 0;
  if (i < text.size() && text[i] == '-') {
    d.negative = true;
    ++i;
  }
  long point = 0;  // digits after the decimal point
  bool after_point = false;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.') {
      after_point = true;
      continue;
    }
    if (d.digits.empty() && text[i] == '0') {
      if (after_point) ++point;  // a leading zero after the point still counts as a place
      continue;
    }
    d.digits += text[i];
    if (after_point) ++point;
  }
  long exponent = 0;
  if (i < text.size()) {
    ++i;
    const bool minus = i < text.size() && text[i] == '-';
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    // A JSON exponent past any double's range reads as 0 or infinity, never exactly: capped.
    for (; i < text.size() && exponent < 100000; ++i) exponent = exponent * 10 + (text[i] - '0');
    if (minus) exponent = -exponent;
  }
  while (!d.digits.empty() && d.digits.back() == '0') {
    d.digits.pop_back();
    ++exponent;
  }
  d.exponent = exponent - point;
  if (d.digits.empty()) return {};
  return d;
}

}  // namespace

bool reads_exactly(double value, std::string_view text) {
  // nlohmann::json's own writing, which is what is stored: std::to_chars writes 2^64 as its 20
  // exact digits, nlohmann::json as 18446744073709552000.
  return decimal_of(nlohmann::json(value).dump()) == decimal_of(text);
}

}  // namespace nudge::api
