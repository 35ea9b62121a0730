#include "fire.hpp"

#include <optional>

namespace nudge {

std::string rfc3339_from_pg(const std::string& pg_timestamp) {
  std::string out = pg_timestamp;
  if (const auto space = out.find(' '); space != std::string::npos) out[space] = 'T';
  if (out.size() >= 3 && out.compare(out.size() - 3, 3, "+00") == 0) {
    out.resize(out.size() - 3);
    out += 'Z';
  }
  return out;
}

namespace {

// The digits of text[at, at + n) as a number; nullopt unless they are all digits.
std::optional<int> digits(std::string_view text, std::size_t at, std::size_t n) {
  if (at + n > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

std::optional<double> seconds_since(std::string_view t, std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  // YYYY-MM-DD HH:MM:SS[.f...]+00
  const auto y = digits(t, 0, 4), mo = digits(t, 5, 2), d = digits(t, 8, 2);
  const auto h = digits(t, 11, 2), mi = digits(t, 14, 2), s = digits(t, 17, 2);
  if (!y || !mo || !d || !h || !mi || !s || t.size() < 22 || t[4] != '-' || t[7] != '-' ||
      t[10] != ' ' || t[13] != ':' || t[16] != ':' || !t.ends_with("+00"))
    return std::nullopt;
  const year_month_day date{year{*y}, month{static_cast<unsigned>(*mo)},
                            day{static_cast<unsigned>(*d)}};
  if (!date.ok()) return std::nullopt;
  double fraction = 0;
  if (t[19] == '.') {
    double scale = 0.1;
    for (std::size_t i = 20; i < t.size() - 3 && t[i] >= '0' && t[i] <= '9'; ++i, scale /= 10)
      fraction += (t[i] - '0') * scale;
  }
  const auto at = sys_days(date) + hours(*h) + minutes(*mi) + seconds(*s);
  return duration<double>(now - at).count() - fraction;
}

std::string Fire::idempotency_key() const {
  return "nudge-" + std::to_string(id) + "-" + rfc3339_from_pg(scheduled_for);
}

}  // namespace nudge
