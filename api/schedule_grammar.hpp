#pragma once
// The grammar of schedules in words, as recursive descent over tokens: what each part of a phrase
// said (Clauses), or a refusal naming the word where no production fits. Deciding what schedule
// the parts make, and refusing combinations, is schedule_words.cpp's job.

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "schedule_words.hpp"
#include "word_lexicon.hpp"
#include "word_tokens.hpp"

namespace nudge::api::words {

// Tokens [begin, end) of the phrase: what a refusal names.
struct Span {
  std::size_t begin = 0, end = 0;
};

struct TimeOfDay {
  int hour = 0, minute = 0, second = 0;
  std::string fraction;   // the digits after the second, as written
  bool midnight = false;  // said "midnight", which next to a day could be its start or its end
  Span span;
  bool has_seconds() const { return second != 0 || !fraction.empty(); }
};

// "every 2 hours", "for 3 days", "in 10 minutes".
struct Count {
  long long n = 1;
  Unit unit = Unit::hour;
  Span span;
};

// A one-off instant given outright.
struct Offset {
  enum class Kind { now, after, instant } kind = Kind::now;
  Count count;          // after: "in 10 minutes"
  std::string instant;  // instant: RFC 3339
  Span span;
};

// What a phrase (or the moment after "starting" or "until") said, part by part. A part is given
// at most once; each optional Span records where.
struct Clauses {
  std::optional<Span> once;
  std::optional<Offset> offset;     // now, in 10 minutes, an RFC 3339 instant
  std::optional<int> relative_day;  // today 0, tomorrow 1
  std::optional<Span> relative_span;
  std::set<int> weekdays;  // 0 = Sunday
  std::optional<Span> weekdays_span;
  bool weekdays_repeat = false;  // every monday, mondays, monday through friday
  bool next_weekday = false;     // next monday
  std::set<int> month_days;      // 1..31
  bool last_day = false;         // the last day of the month
  std::optional<Span> month_days_span;
  std::set<int> months;  // 1..12
  std::optional<Span> months_span;
  bool months_filter = false;  // "in january", "only in january": a repeating filter
  std::optional<int> year;
  std::optional<Span> monthly, yearly;  // every month / of the month / monthly; every year / yearly
  std::optional<Count> frequency;       // every 2 hours, hourly, every 3 days
  std::optional<Span> every_day, every_week;  // every day, daily; every week, weekly
  std::vector<TimeOfDay> times;               // at 9am and 5pm
  std::optional<Span> times_span;
  std::set<int> minutes;  // at minute 15, at 15 minutes past the hour
  std::optional<Span> minutes_span;
  std::optional<std::pair<int, int>> window;  // between 09:00 and 17:59: hours 9..17
  std::optional<Span> window_span;
  std::optional<std::string> cron;  // cron "<expression>"
  std::optional<Span> cron_span;
  // Bounds.
  std::shared_ptr<Clauses> start, until;  // the moments after "starting" and "until"
  std::optional<Span> start_span, until_span;
  std::optional<std::string> flag;  // until <flag>
  std::optional<Span> flag_span;
  std::optional<int> max_fires;
  std::optional<Span> max_fires_span;
  std::optional<Count> duration;  // for 3 days
  // The zone.
  std::optional<std::string> zone;
  std::optional<Span> zone_span;
};

// Thrown for a phrase that is refused.
struct Refused {
  Refusal refusal;
};

// The words tokens [span.begin, span.end) came from, each once, as written.
std::vector<std::string> words_of(const std::vector<Token>& tokens, Span span);

// A refusal naming the words of `span`, and every word of the phrase the grammar does not know.
Refused refused(const std::vector<Token>& tokens, Span span, const std::string& message);

Clauses parse_clauses(const std::vector<Token>& tokens);

}  // namespace nudge::api::words
