#pragma once
// The vocabulary of schedules in words: names of days, months, numbers and units, the cities
// that name a zone, and every other word the grammar knows. One table each, so the grammar, the
// reserved-word list and the README say the same thing.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "word_tokens.hpp"

namespace nudge::api::words {

// Day of the week, cron's numbering (0 = Sunday): "monday", "mon", "tues", ...
std::optional<int> weekday(std::string_view lower);
// The plural, which only a repeating schedule has: "mondays".
std::optional<int> weekday_plural(std::string_view lower);
// Month 1..12: "january", "jan", "sept", ...
std::optional<int> month(std::string_view lower);
// "January" .. "December" for month 1..12.
const char* month_name(int month);
// Days in month 1..12: of that year when given, else the most it can have (29 for February).
int days_in_month(int month, std::optional<int> year = std::nullopt);
// "one" .. "twelve".
std::optional<int> number_word(std::string_view lower);

enum class Unit { second, minute, hour, day, week, month, year };
// "second", "secs", "minute", "min", "hours", "hr", "day", "weeks", "month", "years", ...
std::optional<Unit> unit(std::string_view lower);
long long unit_seconds(Unit u);  // month and year: 0 (their length varies)
const char* unit_name(Unit u);

// A city of the fixed list at tokens[at...] ("Berlin", "New York"): its IANA zone and how many
// tokens its name takes.
struct CityMatch {
  std::string zone;
  std::size_t length = 0;
};
std::optional<CityMatch> city_at(const std::vector<Token>& tokens, std::size_t at);
// Every city of the list with its zone, in order (README).
std::vector<std::pair<std::string, std::string>> cities();

// "CET", "EST", "PST", ... in any case: names that do not say which rules they follow.
bool is_zone_abbreviation(std::string_view word);
// What a refusal of such a name says.
std::string zone_abbreviation_problem(const std::string& word);

// Whether the grammar gives `lower` a meaning (reserved_words() in schedule_words.hpp lists them).
bool is_reserved(std::string_view lower);

}  // namespace nudge::api::words
