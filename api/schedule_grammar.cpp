// The productions of schedules in words, one function each. A phrase is a sequence of clauses in
// any order ("and" between them is allowed); each clause begins with a word that says which it is,
// so the parser never backtracks further than a token or two of lookahead:
//
//   phrase   := clause { ["and"] clause }
//   clause   := once | now | offset | relative | next | weekdays | on | at | date | times
//             | every | rate | only | window | until | starting | for | count | zone | cron
//
// Inside "starting ..." and "until ...", only the clauses that name a moment are taken (the
// nested parse stops at the first other one).

#include "schedule_grammar.hpp"

#include <algorithm>
#include <cctype>

namespace nudge::api::words {
namespace {

bool is_flag_key(const Token& t) {
  if (!t.is(Token::Kind::word) || t.text.empty()) return false;
  const unsigned char first = static_cast<unsigned char>(t.text[0]);
  if (std::isalpha(first) == 0 && first != '_') return false;
  for (const unsigned char c : t.text) {
    if (std::isalnum(c) == 0 && c != '_' && c != ':' && c != '-' && c != '.') return false;
  }
  return !is_reserved(t.lower);
}

// Area/City; or, in parentheses as a schedule's sentence writes it, any name of the tz
// database ("(Japan)", "(EST5EDT)"): the database decides whether it is one.
bool is_zone_name(const Token& t) {
  if (!t.is(Token::Kind::word) || (t.text.find('/') == std::string::npos && !t.enclosed) ||
      std::isalpha(static_cast<unsigned char>(t.text[0])) == 0)
    return false;
  return std::all_of(t.text.begin(), t.text.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '/' || c == '_' || c == '-' || c == '+';
  });
}

class Grammar {
 public:
  explicit Grammar(const std::vector<Token>& tokens) : t_(tokens) {}

  Clauses phrase() {
    Clauses c;
    while (i_ < t_.size()) {
      if (word("and")) {
        ++i_;
        continue;
      }
      if (!clause(c, false)) {
        unreadable_number();
        fail(i_, "could not place \"" + t_[i_].word + "\"");
      }
    }
    return c;
  }

 private:
  // --- looking at tokens ----------------------------------------------------------------------

  const Token* peek(std::size_t k = 0) const { return i_ + k < t_.size() ? &t_[i_ + k] : nullptr; }
  bool word(const char* w, std::size_t k = 0) const {
    const Token* t = peek(k);
    return t != nullptr && t->is_word(w);
  }
  bool kind(Token::Kind kd, std::size_t k = 0) const {
    const Token* t = peek(k);
    return t != nullptr && t->is(kd);
  }
  // A count starts here: digits, "one".."twelve", or "a"/"an" where `articles`.
  bool count_at(std::size_t k, bool articles) const {
    const Token* t = peek(k);
    if (t == nullptr) return false;
    if (t->is(Token::Kind::number)) return true;
    if (!t->is(Token::Kind::word)) return false;
    return number_word(t->lower).has_value() || (articles && (t->lower == "a" || t->lower == "an"));
  }
  // "-5": a number below zero, which is a word to the tokenizer.
  bool negative_at(std::size_t k) const {
    const Token* t = peek(k);
    return t != nullptr && t->is(Token::Kind::word) && t->text.size() > 1 && t->text[0] == '-' &&
           std::isdigit(static_cast<unsigned char>(t->text[1])) != 0;
  }
  bool weekday_at(std::size_t k) const {
    const Token* t = peek(k);
    return t != nullptr && t->is(Token::Kind::word) &&
           (weekday(t->lower) || weekday_plural(t->lower) || weekday_range_word(*t));
  }
  bool month_at(std::size_t k) const {
    const Token* t = peek(k);
    return t != nullptr && t->is(Token::Kind::word) && month(t->lower).has_value();
  }
  bool day_number_at(std::size_t k) const {
    return kind(Token::Kind::number, k) || kind(Token::Kind::ordinal, k);
  }
  // "mon-fri": one word, two days.
  static bool weekday_range_word(const Token& t) {
    const auto dash = t.lower.find('-');
    return dash != std::string::npos && weekday(t.lower.substr(0, dash)) &&
           weekday(t.lower.substr(dash + 1));
  }
  // A time of day starts here: 9:30, 9am, noon, midnight; a bare hour where `bare`.
  bool time_at(std::size_t k, bool bare) const {
    const Token* t = peek(k);
    if (t == nullptr) return false;
    if (t->is(Token::Kind::time) || t->is_word("noon") || t->is_word("midnight")) return true;
    if (!t->is(Token::Kind::number)) return false;
    if (word("am", k + 1) || word("pm", k + 1)) return true;
    return bare && !word("times", k + 1) && !word("time", k + 1);
  }

  Span span_from(std::size_t begin) const { return {begin, i_}; }

  [[noreturn]] void fail(std::size_t token, const std::string& message) const {
    fail(Span{token, std::min(token + 1, t_.size())}, message);
  }
  [[noreturn]] void fail(Span span, const std::string& message) const {
    throw refused(t_, span, message);
  }
  // The token at i_ must be one of what `expected` says; otherwise the phrase ends or goes on
  // with something else there.
  [[noreturn]] void expected(const std::string& what) const {
    if (i_ >= t_.size()) fail(Span{t_.size() - 1, t_.size()}, what + " must follow");
    unreadable_number();
    fail(i_, "\"" + t_[i_].word + "\": expected " + what);
  }
  // Digits past ten, or a fraction of a unit, are no number to the tokenizer: say so rather than
  // "expected ..." or "could not place", which would suggest the number was the wrong kind of word.
  void unreadable_number() const {
    const std::string& text = t_[i_].text;
    const auto point = text.find('.');
    if (text.size() > 10 && text.find_first_not_of("0123456789") == std::string::npos)
      fail(i_, "\"" + t_[i_].word + "\": the number is too large (at most 9999999999)");
    const bool fraction = point != std::string::npos && point + 1 < text.size() &&
                          text.find_first_not_of("0123456789.") == std::string::npos &&
                          text.find('.', point + 1) == std::string::npos && i_ + 1 < t_.size();
    if (fraction && unit(t_[i_ + 1].lower))
      fail(i_, "\"" + t_[i_].word +
                   "\": numbers here are whole: say 90 minutes, or 1 hour and 30 minutes");
    if (fraction && t_[i_ + 1].is_word("times"))
      fail(i_, "\"" + t_[i_].word + "\": the number of times is a whole number");
  }

  template <typename T>
  void set_once(std::optional<T>& slot, T value, Span span, const std::string& what) {
    if (slot) fail(span, what + " is given twice");
    slot = std::move(value);
  }
  void mark_once(std::optional<Span>& slot, Span span, const std::string& what) {
    if (slot) fail(span, what + " is given twice");
    slot = span;
  }

  // --- clauses --------------------------------------------------------------------------------

  bool clause(Clauses& c, bool nested) {
    const Token& t = t_[i_];
    if (t.is_word("now")) return now(c);
    if (t.is_word("today") || t.is_word("tomorrow")) return relative_day(c);
    if (t.is_word("yesterday")) fail(i_, "\"yesterday\" is in the past");
    if (t.is_word("tonight"))
      fail(i_, "\"tonight\" names no time: say \"today at 20:00\" or \"at 8pm\"");
    if (t.is_word("this"))
      fail(i_,
           "\"this\" is ambiguous (this week's or the coming one): say \"next monday\" or a date");
    if (t.is_word("next")) return next_weekday(c);
    if ((t.is_word("in") || t.is_word("every") || t.is_word("for")) && negative_at(1))
      fail(i_ + 1, "\"" + t_[i_ + 1].word + "\": the number must be at least 1");
    if (t.is_word("in") && (count_at(1, true) || word("half", 1))) return in_offset(c);
    if (t.is_word("on")) return on(c, nested);
    if (t.is_word("at")) return at(c, nested);
    if (weekday_at(0)) return weekdays(c, nested, false);
    if (t.is_word("weekdays") || t.is_word("weekends")) return weekday_words(c);
    if (month_at(0) && day_number_at(1)) return month_day(c);
    if (day_number_at(0) && month_at(1)) return day_month(c);
    if (t.is(Token::Kind::date)) return iso_date(c);
    if (t.is(Token::Kind::instant)) return instant(c);
    if (time_at(0, false)) return times(c, false);
    if (t.is(Token::Kind::ordinal) && word("of", 1)) return day_list_of(c);
    if (nested) return false;

    if (t.is_word("once")) {
      mark_once(c.once, Span{i_, i_ + 1}, "once");
      ++i_;
      return true;
    }
    if (t.is_word("every") || t.is_word("each")) return every(c);
    if (t.is_word("hourly") || t.is_word("daily") || t.is_word("weekly") || t.is_word("monthly") ||
        t.is_word("yearly") || t.is_word("annually"))
      return rate(c);
    if (t.is_word("only")) return only(c);
    if (t.is_word("between") || t.is_word("from")) return window(c);
    if (t.is_word("until") || t.is_word("till")) return until(c);
    if (t.is_word("starting")) return starting(c);
    if (t.is_word("for")) return for_duration(c);
    if (count_at(0, false) && (word("times", 1) || word("time", 1))) return count_times(c);
    if (t.is_word("cron")) return cron(c);
    if (t.is_word("in") || t.is_word("utc") || is_zone_name(t) || city_at(t_, i_) ||
        is_zone_abbreviation(t.lower))
      return zone(c);
    return false;
  }

  // now
  bool now(Clauses& c) {
    set_once(c.offset, Offset{Offset::Kind::now, {}, {}, Span{i_, i_ + 1}}, Span{i_, i_ + 1},
             "the time");
    ++i_;
    return true;
  }

  // today | tomorrow
  bool relative_day(Clauses& c) {
    const Span span{i_, i_ + 1};
    if (c.relative_day) fail(span, "the day is given twice");
    c.relative_day = t_[i_].is_word("tomorrow") ? 1 : 0;
    c.relative_span = span;
    ++i_;
    return true;
  }

  // next <weekday>
  bool next_weekday(Clauses& c) {
    const std::size_t begin = i_++;
    const Token* t = peek();
    if (t == nullptr || !t->is(Token::Kind::word) || !weekday(t->lower))
      expected("a day of the week after \"next\" (next monday)");
    add_weekdays(c, {*weekday(t->lower)}, Span{begin, ++i_});
    c.next_weekday = true;
    return true;
  }

  // in <duration>: "in 10 minutes", "in an hour", "in 3 days", "in 1 hour and 30 minutes"
  bool in_offset(Clauses& c) {
    const std::size_t begin = i_++;
    Count n = duration(true);
    if (n.unit == Unit::month || n.unit == Unit::year)
      fail(n.span, "months and years differ in length: give a date (on 2026-12-24)");
    set_once(c.offset, Offset{Offset::Kind::after, n, {}, span_from(begin)}, span_from(begin),
             "the time");
    return true;
  }

  // <count> <unit> ["and a half"] | half [a|an] <unit>, the count at least 1: a half is said in
  // the next smaller unit ("half an hour" is 30 minutes, "a day and a half" is refused: days keep
  // the wall-clock time and hours do not).
  Count count_unit(bool articles) {
    const std::size_t begin = i_;
    if (word("half")) return half_unit(begin);
    Count n = whole_count_unit(articles);
    if (word("and") && word("a", 1) && word("half", 2)) {
      i_ += 3;
      const Count half = half_of(n.unit, span_from(begin));
      n = Count{n.n * unit_seconds(n.unit) / unit_seconds(half.unit) + half.n, half.unit, {}};
    }
    n.span = span_from(begin);
    return n;
  }

  Count half_unit(std::size_t begin) {
    ++i_;
    if (word("a") || word("an")) ++i_;
    const Token* u = peek();
    if (u == nullptr || !u->is(Token::Kind::word) || !unit(u->lower))
      expected("a unit after \"half\" (half an hour, half a minute)");
    ++i_;
    Count n = half_of(*unit(u->lower), span_from(begin));
    n.span = span_from(begin);
    return n;
  }

  // Half of one `u`, in the unit below it.
  Count half_of(Unit u, Span span) const {
    if (u == Unit::hour) return Count{30, Unit::minute, span};
    if (u == Unit::minute) return Count{30, Unit::second, span};
    if (u == Unit::day || u == Unit::week) {
      fail(span, std::string("half a ") + unit_name(u) +
                     ": days keep the wall-clock time and hours do not (a day across daylight "
                     "saving is 23 or 25 hours): give it in hours, or in whole days");
    }
    fail(span, std::string("half a ") + unit_name(u) + " cannot be said: give a whole number");
  }

  Count whole_count_unit(bool articles) {
    const std::size_t begin = i_;
    if (!count_at(0, articles)) expected("a number");
    const Token& t = t_[i_++];
    long long n = 1;
    if (t.is(Token::Kind::number)) {
      n = t.value;
    } else if (auto w = number_word(t.lower)) {
      n = *w;
    }
    if (n < 1) fail(Span{begin, i_}, "\"" + t.word + "\": the number must be at least 1");
    const Token* u = peek();
    if (u == nullptr || !u->is(Token::Kind::word) || !unit(u->lower))
      expected("a unit (seconds, minutes, hours, days or weeks)");
    ++i_;
    return Count{n, *unit(u->lower), span_from(begin)};
  }

  // <count> <unit> {["and"] <count> <unit>}: "1 hour and 30 minutes" is 5,400 seconds. Real time
  // and wall-clock days do not add up (a day across daylight saving is 23 or 25 hours), so the
  // parts are all seconds to hours, or all days and weeks.
  Count duration(bool articles) {
    const std::size_t begin = i_;
    Count total = count_unit(articles);
    const auto part_at = [this](std::size_t k) {
      const Token* u = peek(k + 1);
      return count_at(k, false) && u != nullptr && u->is(Token::Kind::word) && unit(u->lower);
    };
    while (part_at(0) || (word("and") && part_at(1))) {
      if (word("and")) ++i_;
      const Count part = count_unit(false);
      const auto by_days = [](Unit u) { return u == Unit::day || u == Unit::week; };
      if (part.unit == Unit::month || part.unit == Unit::year || total.unit == Unit::month ||
          total.unit == Unit::year) {
        fail(span_from(begin), "months and years differ in length and add up to no duration");
      }
      if (by_days(part.unit) != by_days(total.unit)) {
        fail(span_from(begin),
             "days keep the wall-clock time and hours do not (a day across daylight saving is "
             "23 or 25 hours): give the duration in one or the other");
      }
      const Unit u = by_days(total.unit) ? Unit::day : Unit::second;
      total = Count{total.n * unit_seconds(total.unit) / unit_seconds(u) +
                        part.n * unit_seconds(part.unit) / unit_seconds(u),
                    u,
                    {}};
    }
    total.span = span_from(begin);
    return total;
  }

  // on <date> | on <weekdays> | on the <days of the month> [of ...] | on day 1 of the month |
  // on <instant>
  bool on(Clauses& c, bool nested) {
    const std::size_t begin = i_;
    ++i_;
    // "on the hour" is at minute 0, "on the half hour" at minute 30 ("every hour on the hour").
    if (word("the") && (word("hour", 1) || (word("half", 1) && word("hour", 2)))) {
      if (nested) return rewind(begin);
      const bool half = word("half", 1);
      i_ += half ? 3 : 2;
      return set_minutes(c, {half ? 30 : 0}, span_from(begin));
    }
    if (day_number_at(0) && month_at(1)) return day_month(c, begin);
    if (word("the") || kind(Token::Kind::ordinal)) {
      if (word("the")) ++i_;
      return day_list(c, begin, nested);
    }
    if (word("day") && count_at(1, false)) {
      if (nested) return rewind(begin);
      return day_numbers(c, begin);
    }
    if (weekday_at(0)) return weekdays(c, nested, false, begin);
    if (word("weekdays") || word("weekends") || word("weekday") || word("weekend")) {
      if (nested) return rewind(begin);
      return weekday_words(c, begin);
    }
    if (month_at(0) && day_number_at(1)) return month_day(c, begin);
    if (kind(Token::Kind::date)) return iso_date(c, begin);
    if (kind(Token::Kind::instant)) return instant(c, begin);
    expected("a date or a day after \"on\" (on 2026-12-24, on monday, on the 1st)");
  }

  bool rewind(std::size_t to) {
    i_ = to;
    return false;
  }

  // <ordinal> | last [day], joined by "and" ("the" before any); then an optional
  // "of every month" / "of the month" / "of <months> [year]".
  bool day_list(Clauses& c, std::size_t begin, bool nested) {
    std::set<int> days;
    bool last = false;
    for (bool first = true;; first = false) {
      const std::size_t mark = i_;
      if (!first) {
        if (word("and")) ++i_;
        if (word("the")) ++i_;
      }
      if (kind(Token::Kind::ordinal)) {
        const Token& t = t_[i_];
        if (t.value < 1 || t.value > 31)
          fail(i_, "\"" + t.word + "\": a day of the month is 1st to 31st");
        days.insert(static_cast<int>(t.value));
        ++i_;
      } else if (word("last")) {
        ++i_;
        if (word("day")) ++i_;
        last = true;
      } else {
        if (first) expected("a day of the month (the 1st, the last day)");
        i_ = mark;
        break;
      }
    }
    const Span days_span = span_from(begin);
    set_month_days(c, days, last, days_span);
    if (word("of")) {
      const std::size_t of = i_++;
      if ((word("every") || word("each")) && word("month", 1)) {
        if (nested) return rewind(of);
        i_ += 2;
        mark_once(c.monthly, span_from(of), "every month");
      } else if (word("the") && word("month", 1)) {
        if (nested) return rewind(of);
        i_ += 2;
        mark_once(c.monthly, span_from(of), "every month");
      } else if (month_at(0)) {
        month_list(c, of, false);
        if (kind(Token::Kind::number) && t_[i_].value >= 1000 && t_[i_].value <= 9999) {
          c.year = static_cast<int>(t_[i_++].value);
        }
      } else {
        expected("\"every month\", \"the month\" or a month after \"of\"");
      }
    }
    return true;
  }

  // "24th of december": the day list without "on the".
  bool day_list_of(Clauses& c) { return day_list(c, i_, false); }

  // on day 1[, 15 and 20] of the month (as cron describers say it)
  bool day_numbers(Clauses& c, std::size_t begin) {
    ++i_;  // day
    std::set<int> days;
    for (bool first = true;; first = false) {
      const std::size_t mark = i_;
      if (!first && word("and")) ++i_;
      if (!kind(Token::Kind::number)) {
        if (first) expected("a day of the month");
        i_ = mark;
        break;
      }
      const Token& t = t_[i_];
      if (t.value < 1 || t.value > 31)
        fail(i_, "\"" + t.word + "\": a day of the month is 1 to 31");
      days.insert(static_cast<int>(t.value));
      ++i_;
    }
    if (!(word("of") && word("the", 1) && word("month", 2))) expected("\"of the month\"");
    set_month_days(c, days, false, span_from(begin));
    const std::size_t of = i_;
    i_ += 3;
    mark_once(c.monthly, span_from(of), "every month");
    return true;
  }

  void set_month_days(Clauses& c, const std::set<int>& days, bool last, Span span) {
    if (c.month_days_span) fail(span, "the day of the month is given twice");
    c.month_days = days;
    c.last_day = last;
    c.month_days_span = span;
  }

  // <month> {["and"] <month>}
  void month_list(Clauses& c, std::size_t begin, bool filter) {
    std::set<int> months;
    for (bool first = true;; first = false) {
      const std::size_t mark = i_;
      if (!first && word("and")) ++i_;
      if (!month_at(0)) {
        if (first) expected("a month");
        i_ = mark;
        break;
      }
      months.insert(*month(t_[i_++].lower));
    }
    const Span span = span_from(begin);
    if (c.months_span) fail(span, "the month is given twice");
    c.months = months;
    c.months_span = span;
    c.months_filter = filter;
  }

  // <weekday> | <weekday>s | <weekday> through <weekday> | <weekday> {["and"] <weekday>} | mon-fri
  bool weekdays(Clauses& c, bool nested, bool repeat, std::optional<std::size_t> from = {}) {
    const std::size_t begin = from.value_or(i_);
    std::set<int> days;
    const Token& first = t_[i_];
    if (weekday_range_word(first)) {
      if (nested) return rewind(begin);
      const auto dash = first.lower.find('-');
      add_range(days, *weekday(first.lower.substr(0, dash)),
                *weekday(first.lower.substr(dash + 1)));
      ++i_;
      repeat = true;
    } else if (auto plural = weekday_plural(first.lower)) {
      if (nested) return rewind(begin);
      days.insert(*plural);
      ++i_;
      repeat = true;
      while (true) {
        const std::size_t mark = i_;
        if (word("and")) ++i_;
        const Token* t = peek();
        if (t == nullptr || !t->is(Token::Kind::word) || !weekday_plural(t->lower)) {
          i_ = mark;
          break;
        }
        days.insert(*weekday_plural(t->lower));
        ++i_;
      }
    } else {
      const int d = *weekday(first.lower);
      days.insert(d);
      ++i_;
      if (!nested && (word("through") || word("to") || word("thru")) && peek(1) != nullptr &&
          peek(1)->is(Token::Kind::word) && weekday(peek(1)->lower)) {
        add_range(days, d, *weekday(peek(1)->lower));
        i_ += 2;
        repeat = true;
      } else if (!nested) {
        while (true) {
          const std::size_t mark = i_;
          if (word("and")) ++i_;
          const Token* t = peek();
          if (t == nullptr || !t->is(Token::Kind::word) || !weekday(t->lower)) {
            i_ = mark;
            break;
          }
          days.insert(*weekday(t->lower));
          ++i_;
        }
        if (days.size() > 1 && !repeat) {
          fail(span_from(begin), "several days without \"every\": say \"every monday and friday\"");
        }
      }
    }
    add_weekdays(c, days, span_from(begin));
    c.weekdays_repeat = c.weekdays_repeat || repeat;
    return true;
  }

  static void add_range(std::set<int>& days, int from, int to) {
    for (int d = from;; d = (d + 1) % 7) {
      days.insert(d);
      if (d == to) break;
    }
  }

  void add_weekdays(Clauses& c, const std::set<int>& days, Span span) {
    if (c.weekdays_span) fail(span, "the day of the week is given twice");
    c.weekdays = days;
    c.weekdays_span = span;
  }

  // weekdays | weekends | weekday | weekend [day] (after "on", "every" or alone)
  bool weekday_words(Clauses& c, std::optional<std::size_t> from = {}) {
    const std::size_t begin = from.value_or(i_);
    const bool weekend = word("weekend") || word("weekends");
    ++i_;
    if (weekend && word("day")) ++i_;
    add_weekdays(c, weekend ? std::set<int>{0, 6} : std::set<int>{1, 2, 3, 4, 5}, span_from(begin));
    c.weekdays_repeat = true;
    return true;
  }

  // <month> <day> [<year>]: "Dec 24", "December 24th 2026"
  bool month_day(Clauses& c, std::optional<std::size_t> from = {}) {
    const std::size_t begin = from.value_or(i_);
    const int m = *month(t_[i_++].lower);
    const std::size_t day_at = i_++;
    return set_date(c, m, day_at, take_year(), begin);
  }

  // <day> <month> [<year>]: "24 December", "24th dec 2026"
  bool day_month(Clauses& c, std::optional<std::size_t> from = {}) {
    const std::size_t begin = from.value_or(i_);
    const std::size_t day_at = i_++;
    const int m = *month(t_[i_++].lower);
    return set_date(c, m, day_at, take_year(), begin);
  }

  std::optional<int> take_year() {
    if (kind(Token::Kind::number) && t_[i_].value >= 1000 && t_[i_].value <= 9999)
      return static_cast<int>(t_[i_++].value);
    return std::nullopt;
  }

  bool set_date(Clauses& c, int m, std::size_t day_at, std::optional<int> year, std::size_t begin) {
    const Token& d = t_[day_at];
    if (d.value < 1 || d.value > days_in_month(m, year)) {
      fail(day_at, std::string(month_name(m)) + " has no day " + std::to_string(d.value) +
                       (year && m == 2 && d.value == 29 ? " in " + std::to_string(*year) : ""));
    }
    const Span span = span_from(begin);
    if (c.month_days_span || c.months_span) fail(span, "the date is given twice");
    c.month_days = {static_cast<int>(d.value)};
    c.month_days_span = span;
    c.months = {m};
    c.months_span = span;
    c.year = year;
    return true;
  }

  // 2026-12-24
  bool iso_date(Clauses& c, std::optional<std::size_t> from = {}) {
    const std::size_t begin = from.value_or(i_);
    const Token& t = t_[i_];
    if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > days_in_month(t.month, t.year))
      fail(i_, "\"" + t.word + "\" is not a date");
    ++i_;
    const Span span = span_from(begin);
    if (c.month_days_span || c.months_span) fail(span, "the date is given twice");
    c.month_days = {t.day};
    c.months = {t.month};
    c.month_days_span = c.months_span = span;
    c.year = t.year;
    return true;
  }

  // 2026-10-25T02:30:00+01:00
  bool instant(Clauses& c, std::optional<std::size_t> from = {}) {
    const std::size_t begin = from.value_or(i_);
    const std::string at = t_[i_++].text;
    set_once(c.offset, Offset{Offset::Kind::instant, {}, at, span_from(begin)}, span_from(begin),
             "the time");
    return true;
  }

  // at most <n> times | at most once | at minute(s) <list> | at <list> minutes past the hour |
  // at <times>
  bool at(Clauses& c, bool nested) {
    const std::size_t begin = i_++;
    if (word("most")) {
      if (nested) return rewind(begin);
      ++i_;
      if (word("once")) {
        ++i_;
        set_once(c.max_fires, 1, span_from(begin), "the number of times");
        return true;
      }
      return count_times(c, begin);
    }
    if (word("minute") || word("minutes")) {
      if (nested) return rewind(begin);
      ++i_;
      return minute_list(c, begin, false);
    }
    if (kind(Token::Kind::number) && minutes_past_follows()) {
      if (nested) return rewind(begin);
      return minute_list(c, begin, true);
    }
    if (!time_at(0, true)) expected("a time after \"at\" (at 9am, at 17:30, at noon)");
    return times(c, true, begin);
  }

  // After "at": <n> {["and"] <n>} minutes past the hour?
  bool minutes_past_follows() const {
    std::size_t k = 0;
    while (kind(Token::Kind::number, k) || word("and", k)) ++k;
    return word("minutes", k) && word("past", k + 1);
  }

  // <n> {["and"] <n>} [minutes past the hour]
  bool minute_list(Clauses& c, std::size_t begin, bool past_the_hour) {
    std::set<int> minutes;
    for (bool first = true;; first = false) {
      const std::size_t mark = i_;
      if (!first && word("and")) ++i_;
      // "at minute 45, 5 times": the 5 is a count, not a minute (explore31c F4).
      const bool count_follows = !first && (word("times", 1) || word("time", 1));
      if (!kind(Token::Kind::number) || count_follows) {
        if (first) expected("a minute (0 to 59)");
        i_ = mark;
        break;
      }
      const Token& t = t_[i_];
      if (t.value > 59) fail(i_, "\"" + t.word + "\": a minute is 0 to 59");
      minutes.insert(static_cast<int>(t.value));
      ++i_;
    }
    if (past_the_hour) {
      if (!(word("minutes") && word("past", 1) && word("the", 2) && word("hour", 3)))
        expected("\"minutes past the hour\"");
      i_ += 4;
    }
    return set_minutes(c, minutes, span_from(begin));
  }

  bool set_minutes(Clauses& c, std::set<int> minutes, const Span& span) {
    if (c.minutes_span) fail(span, "the minute is given twice");
    c.minutes = std::move(minutes);
    c.minutes_span = span;
    return true;
  }

  // <time> {["and"] <time>}
  bool times(Clauses& c, bool bare, std::optional<std::size_t> from = {}) {
    const std::size_t begin = from.value_or(i_);
    std::vector<TimeOfDay> list;
    for (bool first = true;; first = false) {
      const std::size_t mark = i_;
      if (!first && word("and")) ++i_;
      if (!time_at(0, bare)) {
        i_ = mark;
        break;
      }
      list.push_back(time_of_day(bare));
    }
    const Span span = span_from(begin);
    if (c.times_span) fail(span, "the time of day is given twice");
    c.times = list;
    c.times_span = span;
    return true;
  }

  // 9:30 [am|pm] | 9 am|pm | noon | midnight | 9 (where `bare`: 09:00, the 24-hour clock)
  TimeOfDay time_of_day(bool bare) {
    const std::size_t begin = i_;
    const Token& t = t_[i_++];
    TimeOfDay out;
    if (t.is_word("noon")) {
      out.hour = 12;
    } else if (t.is_word("midnight")) {
      out.midnight = true;
    } else {
      if (t.is(Token::Kind::time)) {
        out.hour = t.hour;
        out.minute = t.minute;
        out.second = t.second;
        out.fraction = t.fraction;
      } else if (bare || word("am") || word("pm")) {
        out.hour = static_cast<int>(std::min<long long>(t.value, 99));
      }
      if (word("am") || word("pm")) {
        const bool pm = word("pm");
        ++i_;
        if (out.hour < 1 || out.hour > 12)
          fail(span_from(begin), "\"" + t.word + "\": with am or pm the hour is 1 to 12");
        out.hour = out.hour % 12 + (pm ? 12 : 0);
      } else if (out.hour > 23) {
        fail(begin, "\"" + t.word + "\": the hour is 0 to 23");
      }
      if (out.minute > 59) fail(begin, "\"" + t.word + "\": the minute is 0 to 59");
      if (out.second > 59) fail(begin, "\"" + t.word + "\": the second is 0 to 59");
    }
    out.span = span_from(begin);
    return out;
  }

  // every <count> <unit> | every <unit> | every weekday | every weekend [day] |
  // every <weekdays> | every <month> <day> | every month | every year
  bool every(Clauses& c) {
    const std::size_t begin = i_++;
    if (kind(Token::Kind::ordinal) && weekday_at(1)) {
      fail(i_, "\"" + t_[i_].word +
                   "\": which weekday of the month cannot be said (cron has no nth weekday)");
    }
    if (count_at(0, false) || word("half")) {
      Count n = count_unit(false);
      n.span = span_from(begin);
      return frequency(c, n);
    }
    if (const Token* t = peek(); t != nullptr && t->is(Token::Kind::word) && unit(t->lower)) {
      ++i_;
      return frequency(c, Count{1, *unit(t->lower), span_from(begin)});
    }
    if (word("weekday") || word("weekdays") || word("weekend") || word("weekends"))
      return weekday_words(c, begin);
    if (weekday_at(0)) return weekdays(c, false, true, begin);
    if (month_at(0) && day_number_at(1)) {
      month_day(c);
      mark_once(c.yearly, span_from(begin), "every year");
      return true;
    }
    expected("what repeats after \"every\" (every 2 hours, every day, every monday)");
  }

  bool frequency(Clauses& c, Count n) {
    if (n.unit == Unit::month || n.unit == Unit::year) {
      if (n.n != 1) {
        fail(n.span, std::string("every ") + std::to_string(n.n) + " " + unit_name(n.unit) +
                         "s: cron counts from January, not from now; name the months instead");
      }
      mark_once(n.unit == Unit::month ? c.monthly : c.yearly, n.span,
                n.unit == Unit::month ? "every month" : "every year");
      return true;
    }
    // "every day" and "every week" say which days (with a time, or days of the week), not only
    // how often: "every day, every 15 minutes" is a calendar schedule.
    if ((n.unit == Unit::day || n.unit == Unit::week) && n.n == 1) {
      mark_once(n.unit == Unit::day ? c.every_day : c.every_week, n.span,
                n.unit == Unit::day ? "every day" : "every week");
      return true;
    }
    set_once(c.frequency, n, n.span, "how often");
    return true;
  }

  // hourly | daily | weekly | monthly | yearly | annually
  bool rate(Clauses& c) {
    const Span span{i_, i_ + 1};
    const Token& t = t_[i_++];
    if (t.is_word("monthly")) {
      mark_once(c.monthly, span, "every month");
    } else if (t.is_word("yearly") || t.is_word("annually")) {
      mark_once(c.yearly, span, "every year");
    } else {
      const Unit u = t.is_word("hourly") ? Unit::hour : t.is_word("daily") ? Unit::day : Unit::week;
      return frequency(c, Count{1, u, span});
    }
    return true;
  }

  // only on <weekdays> | only in <months> (as cron describers say them)
  bool only(Clauses& c) {
    const std::size_t begin = i_++;
    if (word("on") && weekday_at(1)) {
      ++i_;
      return weekdays(c, false, true, begin);
    }
    if (word("in") && month_at(1)) {
      ++i_;
      month_list(c, begin, true);
      return true;
    }
    expected("\"on\" and a day, or \"in\" and a month, after \"only\"");
  }

  // between <time> and <time> | from <time> to <time>: whole hours, the end at its minute 59
  bool window(Clauses& c) {
    const std::size_t begin = i_;
    const bool between = t_[i_++].is_word("between");
    if (!time_at(0, true)) expected("a time (between 09:00 and 17:59)");
    const TimeOfDay from = time_of_day(true);
    if (between ? !word("and") : !(word("to") || word("through") || word("until"))) {
      expected(between ? "\"and\" and the window's end" : "\"to\" and the window's end");
    }
    ++i_;
    if (!time_at(0, true)) expected("the window's end (17:59)");
    const TimeOfDay to = time_of_day(true);
    if (from.minute != 0 || from.has_seconds())
      fail(from.span, "a window starts at a whole hour (09:00)");
    if (to.minute != 59 || to.has_seconds()) {
      fail(to.span, "a window ends at the last minute of an hour: say " +
                        std::to_string((to.hour + 23) % 24) + ":59 or " + std::to_string(to.hour) +
                        ":59 (whether " + std::to_string(to.hour) +
                        ":00 itself fires is ambiguous)");
    }
    if (to.hour < from.hour) fail(to.span, "the window ends before it starts");
    set_once(c.window, std::make_pair(from.hour, to.hour), span_from(begin), "the window");
    c.window_span = span_from(begin);
    return true;
  }

  // until <flag> [is true] | until "<flag>" [is true] | until <moment>
  bool until(Clauses& c) {
    const std::size_t begin = i_++;
    const Token* t = peek();
    if (t == nullptr) expected("a flag key, a date or a time after \"until\"");
    if (t->is(Token::Kind::quoted) || is_flag_key(*t)) {
      ++i_;
      if (word("is") && word("true", 1)) i_ += 2;
      set_once(c.flag, t->text, span_from(begin), "the stop flag");
      c.flag_span = span_from(begin);
      return true;
    }
    auto moment = nested_moment("a flag key, a date or a time after \"until\"");
    if (c.until) fail(span_from(begin), "the end is given twice");
    c.until = std::move(moment);
    c.until_span = span_from(begin);
    return true;
  }

  // starting [from] <moment>
  bool starting(Clauses& c) {
    const std::size_t begin = i_++;
    if (word("from")) ++i_;
    auto moment = nested_moment("a date or a time after \"starting\"");
    if (c.start) fail(span_from(begin), "the start is given twice");
    c.start = std::move(moment);
    c.start_span = span_from(begin);
    return true;
  }

  std::shared_ptr<Clauses> nested_moment(const std::string& what) {
    auto m = std::make_shared<Clauses>();
    const std::size_t begin = i_;
    while (i_ < t_.size() && clause(*m, true)) {
    }
    if (i_ == begin) expected(what);
    return m;
  }

  // for <duration>: "for 3 days", "for an hour", "for 2 hours and 30 minutes"
  bool for_duration(Clauses& c) {
    const std::size_t begin = i_++;
    Count n = duration(true);
    if (n.unit == Unit::month || n.unit == Unit::year)
      fail(n.span, "months and years differ in length: say until a date");
    n.span = span_from(begin);
    set_once(c.duration, n, n.span, "how long");
    return true;
  }

  // <n> times | <n> time
  bool count_times(Clauses& c, std::optional<std::size_t> from = {}) {
    const std::size_t begin = from.value_or(i_);
    if (!count_at(0, false)) expected("a number of times");
    const Token& t = t_[i_++];
    const long long n = t.is(Token::Kind::number) ? t.value : *number_word(t.lower);
    if (!(word("times") || word("time"))) expected("\"times\"");
    ++i_;
    if (n < 1) fail(span_from(begin), "\"" + t.word + "\": the number of times is at least 1");
    if (n > 2147483647)
      fail(span_from(begin), "\"" + t.word + "\": the number of times is at most 2147483647");
    set_once(c.max_fires, static_cast<int>(n), span_from(begin), "the number of times");
    c.max_fires_span = span_from(begin);
    return true;
  }

  // cron "<expression>"
  bool cron(Clauses& c) {
    const std::size_t begin = i_++;
    if (!kind(Token::Kind::quoted)) expected("a quoted cron expression (cron \"0 9 * * 1-5\")");
    set_once(c.cron, t_[i_++].text, span_from(begin), "the cron expression");
    c.cron_span = span_from(begin);
    return true;
  }

  // in <zone> | <Area/City> | UTC | <city> [time]
  bool zone(Clauses& c) {
    const std::size_t begin = i_;
    if (word("in")) ++i_;
    const Token* t = peek();
    if (t == nullptr) expected("a month, a zone or a number after \"in\"");
    std::string name;
    if (month_at(0) && begin != i_) {
      month_list(c, begin, true);
      return true;
    }
    if (is_zone_abbreviation(t->lower) && !(t->enclosed && begin == i_)) {
      fail(i_, zone_abbreviation_problem(t->word));
    }
    if (t->is_word("utc")) {
      name = "UTC";
      ++i_;
    } else if (is_zone_name(*t)) {
      name = t->text;
      ++i_;
    } else if (auto city = city_at(t_, i_)) {
      name = city->zone;
      i_ += city->length;
    } else {
      expected("a month, a zone (Europe/Berlin) or a city after \"in\"");
    }
    if (word("time")) ++i_;
    set_once(c.zone, name, span_from(begin), "the zone");
    c.zone_span = span_from(begin);
    return true;
  }

  const std::vector<Token>& t_;
  std::size_t i_ = 0;
};

}  // namespace

std::vector<std::string> words_of(const std::vector<Token>& tokens, Span span) {
  std::vector<std::string> out;
  for (std::size_t i = span.begin; i < span.end && i < tokens.size(); ++i) {
    // Tokens of one word ("9am") follow each other.
    if (i > span.begin && tokens[i].word_index == tokens[i - 1].word_index) continue;
    out.push_back(tokens[i].word);
  }
  return out;
}

Refused refused(const std::vector<Token>& tokens, Span span, const std::string& message) {
  std::vector<std::string> words = words_of(tokens, span);
  // Words the grammar has no use for anywhere are named too, so one answer lists them all.
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (i >= span.begin && i < span.end) continue;
    if (!t.is(Token::Kind::word) || is_reserved(t.lower) || is_zone_name(t) || city_at(tokens, i) ||
        (i > 0 && tokens[i - 1].is(Token::Kind::word) &&
         (tokens[i - 1].lower == "until" || tokens[i - 1].lower == "till")))
      continue;
    // The later words of a city's name.
    bool in_city = false;
    for (std::size_t k = 1; k <= 2 && k <= i && !in_city; ++k) {
      const auto city = city_at(tokens, i - k);
      in_city = city && city->length > k;
    }
    if (in_city || std::find(words.begin(), words.end(), t.word) != words.end()) continue;
    words.push_back(t.word);
  }
  return Refused{Refusal{words, message}};
}

Clauses parse_clauses(const std::vector<Token>& tokens) {
  return Grammar(tokens).phrase();
}

}  // namespace nudge::api::words
