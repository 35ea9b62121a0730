#include "word_lexicon.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <utility>

#include "schedule_words.hpp"

namespace nudge::api::words {
namespace {

template <std::size_t N>
std::optional<int> index_in(const std::array<std::pair<std::string_view, int>, N>& table,
                            std::string_view lower) {
  for (const auto& [name, value] : table) {
    if (name == lower) return value;
  }
  return std::nullopt;
}

constexpr std::array<std::pair<std::string_view, int>, 17> kWeekdays = {{
    {"sunday", 0},
    {"sun", 0},
    {"monday", 1},
    {"mon", 1},
    {"tuesday", 2},
    {"tue", 2},
    {"tues", 2},
    {"wednesday", 3},
    {"wed", 3},
    {"thursday", 4},
    {"thu", 4},
    {"thur", 4},
    {"thurs", 4},
    {"friday", 5},
    {"fri", 5},
    {"saturday", 6},
    {"sat", 6},
}};

constexpr std::array<std::pair<std::string_view, int>, 7> kWeekdayPlurals = {{
    {"sundays", 0},
    {"mondays", 1},
    {"tuesdays", 2},
    {"wednesdays", 3},
    {"thursdays", 4},
    {"fridays", 5},
    {"saturdays", 6},
}};

constexpr std::array<std::pair<std::string_view, int>, 24> kMonths = {{
    {"january", 1},   {"jan", 1},   {"february", 2},  {"feb", 2},      {"march", 3},
    {"mar", 3},       {"april", 4}, {"apr", 4},       {"may", 5},      {"june", 6},
    {"jun", 6},       {"july", 7},  {"jul", 7},       {"august", 8},   {"aug", 8},
    {"september", 9}, {"sep", 9},   {"sept", 9},      {"october", 10}, {"oct", 10},
    {"november", 11}, {"nov", 11},  {"december", 12}, {"dec", 12},
}};

constexpr std::array<std::pair<std::string_view, int>, 12> kNumberWords = {{
    {"one", 1},
    {"two", 2},
    {"three", 3},
    {"four", 4},
    {"five", 5},
    {"six", 6},
    {"seven", 7},
    {"eight", 8},
    {"nine", 9},
    {"ten", 10},
    {"eleven", 11},
    {"twelve", 12},
}};

constexpr std::array<std::pair<std::string_view, Unit>, 20> kUnits = {{
    {"second", Unit::second}, {"seconds", Unit::second}, {"sec", Unit::second},
    {"secs", Unit::second},   {"minute", Unit::minute},  {"minutes", Unit::minute},
    {"min", Unit::minute},    {"mins", Unit::minute},    {"hour", Unit::hour},
    {"hours", Unit::hour},    {"hr", Unit::hour},        {"hrs", Unit::hour},
    {"day", Unit::day},       {"days", Unit::day},       {"week", Unit::week},
    {"weeks", Unit::week},    {"month", Unit::month},    {"months", Unit::month},
    {"year", Unit::year},     {"years", Unit::year},
}};

// The fixed list of cities (README, "Schedules in words"): the largest cities of the zones
// people schedule in most, and the capitals of Europe's biggest economies.
const std::vector<std::pair<std::string, std::string>> kCities = {
    {"amsterdam", "Europe/Amsterdam"},
    {"athens", "Europe/Athens"},
    {"auckland", "Pacific/Auckland"},
    {"bangkok", "Asia/Bangkok"},
    {"barcelona", "Europe/Madrid"},
    {"beijing", "Asia/Shanghai"},
    {"berlin", "Europe/Berlin"},
    {"boston", "America/New_York"},
    {"brussels", "Europe/Brussels"},
    {"budapest", "Europe/Budapest"},
    {"buenos aires", "America/Argentina/Buenos_Aires"},
    {"cairo", "Africa/Cairo"},
    {"cape town", "Africa/Johannesburg"},
    {"chicago", "America/Chicago"},
    {"copenhagen", "Europe/Copenhagen"},
    {"delhi", "Asia/Kolkata"},
    {"denver", "America/Denver"},
    {"dubai", "Asia/Dubai"},
    {"dublin", "Europe/Dublin"},
    {"frankfurt", "Europe/Berlin"},
    {"helsinki", "Europe/Helsinki"},
    {"hong kong", "Asia/Hong_Kong"},
    {"honolulu", "Pacific/Honolulu"},
    {"istanbul", "Europe/Istanbul"},
    {"jakarta", "Asia/Jakarta"},
    {"johannesburg", "Africa/Johannesburg"},
    {"karachi", "Asia/Karachi"},
    {"kathmandu", "Asia/Kathmandu"},
    {"kolkata", "Asia/Kolkata"},
    {"lagos", "Africa/Lagos"},
    {"lisbon", "Europe/Lisbon"},
    {"london", "Europe/London"},
    {"los angeles", "America/Los_Angeles"},
    {"madrid", "Europe/Madrid"},
    {"manila", "Asia/Manila"},
    {"melbourne", "Australia/Melbourne"},
    {"mexico city", "America/Mexico_City"},
    {"miami", "America/New_York"},
    {"milan", "Europe/Rome"},
    {"montreal", "America/Toronto"},
    {"moscow", "Europe/Moscow"},
    {"mumbai", "Asia/Kolkata"},
    {"munich", "Europe/Berlin"},
    {"nairobi", "Africa/Nairobi"},
    {"new delhi", "Asia/Kolkata"},
    {"new york", "America/New_York"},
    {"oslo", "Europe/Oslo"},
    {"paris", "Europe/Paris"},
    {"phoenix", "America/Phoenix"},
    {"prague", "Europe/Prague"},
    {"rome", "Europe/Rome"},
    {"san francisco", "America/Los_Angeles"},
    {"sao paulo", "America/Sao_Paulo"},
    // As the tokens are lower-cased (ASCII letters only): "São Paulo" reads "são paulo".
    {"s\u00e3o paulo", "America/Sao_Paulo"},
    {"seattle", "America/Los_Angeles"},
    {"seoul", "Asia/Seoul"},
    {"shanghai", "Asia/Shanghai"},
    {"singapore", "Asia/Singapore"},
    {"stockholm", "Europe/Stockholm"},
    {"sydney", "Australia/Sydney"},
    {"tehran", "Asia/Tehran"},
    {"tel aviv", "Asia/Jerusalem"},
    {"tokyo", "Asia/Tokyo"},
    {"toronto", "America/Toronto"},
    {"vancouver", "America/Vancouver"},
    {"vienna", "Europe/Vienna"},
    {"warsaw", "Europe/Warsaw"},
    {"zurich", "Europe/Zurich"},
};

constexpr std::array<std::string_view, 24> kAbbreviations = {
    "cet", "cest", "eet", "eest", "wet", "west", "gmt", "bst", "ist", "est",  "edt",  "cst",
    "cdt", "mst",  "mdt", "pst",  "pdt", "akst", "hst", "jst", "kst", "aest", "aedt", "msk",
};

// Words of the grammar that none of the tables above holds.
constexpr std::array<std::string_view, 51> kGrammarWords = {
    "a",        "am",       "an",      "and",      "annually", "at",      "between",  "cron",
    "daily",    "day",      "each",    "every",    "for",      "from",    "hour",     "hourly",
    "in",       "is",       "last",    "midnight", "minute",   "monthly", "most",     "next",
    "noon",     "now",      "of",      "on",       "once",     "only",    "past",     "pm",
    "starting", "the",      "through", "thru",     "till",     "time",    "times",    "to",
    "today",    "tomorrow", "true",    "until",    "utc",      "weekday", "weekdays", "weekend",
    "weekends", "weekly",   "yearly",
};

// Words the grammar knows only to refuse them, with the reason.
constexpr std::array<std::string_view, 3> kRefusedWords = {"yesterday", "tonight", "this"};

}  // namespace

std::optional<int> weekday(std::string_view lower) {
  return index_in(kWeekdays, lower);
}
std::optional<int> weekday_plural(std::string_view lower) {
  return index_in(kWeekdayPlurals, lower);
}
std::optional<int> month(std::string_view lower) {
  return index_in(kMonths, lower);
}
const char* month_name(int month) {
  static constexpr const char* kNames[] = {"January",   "February", "March",    "April",
                                           "May",       "June",     "July",     "August",
                                           "September", "October",  "November", "December"};
  return kNames[month - 1];
}
int days_in_month(int month, std::optional<int> year) {
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && year) {
    const bool leap = (*year % 4 == 0 && *year % 100 != 0) || *year % 400 == 0;
    return leap ? 29 : 28;
  }
  return kDays[month - 1];
}
std::optional<int> number_word(std::string_view lower) {
  return index_in(kNumberWords, lower);
}

std::optional<Unit> unit(std::string_view lower) {
  for (const auto& [name, u] : kUnits) {
    if (name == lower) return u;
  }
  return std::nullopt;
}

long long unit_seconds(Unit u) {
  switch (u) {
    case Unit::second:
      return 1;
    case Unit::minute:
      return 60;
    case Unit::hour:
      return 3600;
    case Unit::day:
      return 86400;
    case Unit::week:
      return 604800;
    default:
      return 0;
  }
}

const char* unit_name(Unit u) {
  switch (u) {
    case Unit::second:
      return "second";
    case Unit::minute:
      return "minute";
    case Unit::hour:
      return "hour";
    case Unit::day:
      return "day";
    case Unit::week:
      return "week";
    case Unit::month:
      return "month";
    default:
      return "year";
  }
}

std::optional<CityMatch> city_at(const std::vector<Token>& tokens, std::size_t at) {
  std::optional<CityMatch> best;
  for (const auto& [name, zone] : kCities) {
    // The city's words, one token each.
    std::size_t i = at;
    std::size_t from = 0;
    bool match = true;
    while (from <= name.size()) {
      const auto space = name.find(' ', from);
      const std::string part =
          name.substr(from, space == std::string::npos ? std::string::npos : space - from);
      if (i >= tokens.size() || !tokens[i].is(Token::Kind::word) || tokens[i].lower != part) {
        match = false;
        break;
      }
      ++i;
      if (space == std::string::npos) break;
      from = space + 1;
    }
    if (match && (!best || i - at > best->length)) best = CityMatch{zone, i - at};
  }
  return best;
}

std::vector<std::pair<std::string, std::string>> cities() {
  return kCities;
}

bool is_zone_abbreviation(std::string_view word) {
  return std::any_of(kAbbreviations.begin(), kAbbreviations.end(), [&](std::string_view a) {
    return std::equal(a.begin(), a.end(), word.begin(), word.end(), [](char x, char y) {
      return x == std::tolower(static_cast<unsigned char>(y));
    });
  });
}

std::string zone_abbreviation_problem(const std::string& word) {
  return "\"" + word +
         "\" does not say which daylight-saving rules apply: name the zone (Europe/Berlin, "
         "America/New_York) or a city";
}

const std::vector<std::string>& reserved_words() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> all;
    for (const auto& [name, v] : kWeekdays) all.emplace_back(name);
    for (const auto& [name, v] : kWeekdayPlurals) all.emplace_back(name);
    for (const auto& [name, v] : kMonths) all.emplace_back(name);
    for (const auto& [name, v] : kNumberWords) all.emplace_back(name);
    for (const auto& [name, v] : kUnits) all.emplace_back(name);
    for (const auto& name : kAbbreviations) all.emplace_back(name);
    for (const auto& name : kGrammarWords) all.emplace_back(name);
    for (const auto& name : kRefusedWords) all.emplace_back(name);
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    return all;
  }();
  return words;
}

bool is_reserved(std::string_view lower) {
  const auto& all = reserved_words();
  return std::binary_search(all.begin(), all.end(), lower);
}

}  // namespace nudge::api::words
