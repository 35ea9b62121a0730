#pragma once
// Schedules in plain words: "every weekday at 9am until feedback_submitted" becomes the fields of
// a create (schedule_type, interval_seconds, cron, timezone, stop condition, max_fires), or a
// refusal naming the words it could not place. A pure function of the text and a default zone:
// a tokenizer (word_tokens.hpp) and a recursive-descent grammar with one function per production
// (schedule_grammar.cpp), then the rules that turn what was said into a schedule or refuse it
// (schedule_words.cpp). It never guesses: every token is consumed by a production, or the phrase
// is refused. The grammar and its rules are written down in README.md, "Schedules in words".
//
// Instants that depend on the zone's clock ("tomorrow at 9", "until friday") come out as Moments,
// which the database turns into instants (nudge.resolve_moment) with the cron engine's rules for
// daylight saving, in the same round trip that describes the schedule and previews it.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace nudge::api::words {

// A point in time as the words name it; `json` is the form nudge.resolve_moment reads:
//   {"kind": "instant", "at": RFC 3339}                 an instant given outright
//   {"kind": "after", "seconds": n}                     n real seconds after the base (now, or
//                                                       the start for "for 2 hours")
//   {"kind": "days", "days": n}                         the base's wall time n days later
//   {"kind": "local", "date" | "day": ..., "time": t}   a date (or today + day) at wall time t
//   {"kind": "next", "cron": c [, "day": n], "seconds": s}  c's next occurrence after the base (or
//                                                       after the start of today + n), + s seconds
// plus "or_now": true when a moment that is not ahead of now means "from now" ("starting today").
struct Moment {
  nlohmann::json json;
  std::vector<std::string> words;  // the words that named it, for "is in the past"
};

// What a phrase determines. Exactly the create fields the text gave; the zone is the one the
// text named, else the default.
struct Schedule {
  std::string schedule_type;             // one_time, recurring or cron
  std::optional<Moment> run_at;          // one_time: when; others: "starting ..."
  std::optional<int> interval_seconds;   // recurring
  std::optional<std::string> cron;       // cron
  std::vector<std::string> cron_words;   // cron "...": the words, should the expression be bad
  std::string timezone;                  // cron's zone; for the others, the zone of wall times
  bool zone_from_text = false;           // named in the text (a bad one is then a word to name)
  std::vector<std::string> zone_words;   // the words that named it
  std::optional<std::string> stop_flag;  // "until <flag>": stop_condition_value (db_check)
  std::optional<int> max_fires;          // "5 times"
  std::optional<Moment> ends_at;         // "until 2026-12-31", "for 3 days"

  // "for 3 days" with no start: the end is counted from now, which is then the start too.
  bool counted_from_now() const {
    if (run_at || !ends_at) return false;
    const std::string kind = ends_at->json.value("kind", "");
    return kind == "after" || kind == "days";
  }
};

// A phrase refused: the words it could not place (or that make it ambiguous) and why.
struct Refusal {
  std::vector<std::string> unparsed;
  std::string message;
};

struct Result {
  std::optional<Schedule> schedule;  // set when the phrase was understood
  Refusal refusal;                   // otherwise
};

// Parses `text` (any case, extra spaces and commas ignored) with `default_zone` (an IANA name)
// for wall-clock times when the text names no zone.
Result parse(const std::string& text, const std::string& default_zone);

// Every word the grammar gives a meaning to. A stop flag with one of these names must be quoted
// ("until \"today\""); nudge.words_flag quotes the same list.
const std::vector<std::string>& reserved_words();

}  // namespace nudge::api::words
