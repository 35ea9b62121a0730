// What the parts of a phrase make (schedule_grammar.cpp finds the parts): a one-off, a fixed
// interval, or a calendar schedule as a cron expression, with its bounds. Combinations that cron
// cannot say exactly, or that English leaves open, are refused with the reason; the rules are
// the README's, "Schedules in words".

#include "schedule_words.hpp"

#include <algorithm>
#include <cstdio>

#include "input.hpp"
#include "schedule_grammar.hpp"

namespace nudge::api::words {
namespace {

using nlohmann::json;

// One cron field from a set of values: runs of three or more as ranges ("1-5"), else a list.
std::string field(const std::set<int>& values) {
  std::string out;
  for (auto it = values.begin(); it != values.end();) {
    auto end = it;
    while (std::next(end) != values.end() && *std::next(end) == *end + 1) ++end;
    if (!out.empty()) out += ',';
    if (std::distance(it, end) >= 2) {
      out += std::to_string(*it) + "-" + std::to_string(*end);
    } else {
      out += std::to_string(*it);
      if (end != it) out += "," + std::to_string(*end);
    }
    it = std::next(end);
  }
  return out;
}

std::string two_digits(int n) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d", n);
  return buf;
}

// HH:MM:SS[.fraction]: the wall time nudge.resolve_moment reads.
std::string clock_text(const TimeOfDay& t) {
  std::string out = two_digits(t.hour) + ":" + two_digits(t.minute) + ":" + two_digits(t.second);
  if (!t.fraction.empty()) out += "." + t.fraction;
  return out;
}

enum class Role { one_off, start, end };

class Builder {
 public:
  Builder(const std::vector<Token>& tokens, const Clauses& c, const std::string& default_zone)
      : t_(tokens), c_(c), default_zone_(default_zone) {}

  Schedule build() {
    Schedule s;
    if (c_.zone) {
      s.timezone = *c_.zone;
      s.zone_from_text = true;
      s.zone_words = words_of(t_, *c_.zone_span);
    } else {
      s.timezone = default_zone_;
    }
    if (c_.cron) {
      only_bounds_beside(*c_.cron_span, "a cron expression");
      s.schedule_type = "cron";
      s.cron = *c_.cron;
      s.cron_words = words_of(t_, *c_.cron_span);
    } else if (repeating()) {
      repeat(s);
    } else {
      one_off(s);
    }
    bounds(s);
    return s;
  }

 private:
  [[noreturn]] void fail(Span span, const std::string& message) const {
    throw refused(t_, span, message);
  }

  bool repeating() const {
    return c_.frequency || c_.every_day || c_.every_week || c_.weekdays_repeat || c_.monthly ||
           c_.yearly || c_.window || c_.minutes_span || c_.months_filter;
  }

  // --- one-offs -------------------------------------------------------------------------------

  void one_off(Schedule& s) {
    if (c_.start_span)
      fail(*c_.start_span, "a one-off fires once: \"starting\" is for repeating schedules");
    if (c_.until_span)
      fail(*c_.until_span, "a one-off fires once: an end is for repeating schedules");
    if (c_.duration)
      fail(c_.duration->span, "a one-off fires once: \"for\" is for repeating schedules");
    if (c_.max_fires_span)
      fail(*c_.max_fires_span,
           "a one-off fires once: a number of times is for repeating schedules");
    if (!c_.offset && !c_.relative_day && !c_.weekdays_span && !c_.month_days_span &&
        !c_.times_span) {
      throw refused(t_, Span{0, t_.size()},
                    "the text says no time: give one (tomorrow at 9, every day at 9)");
    }
    s.schedule_type = "one_time";
    s.run_at = moment(c_, Role::one_off);
  }

  // The instant a moment's parts name. Defaults for a day without a time: 09:00 for a one-off,
  // the start of the day for "starting", its end (23:59:59) for "until".
  Moment moment(const Clauses& m, Role role) const {
    const Span whole = whole_span(m);
    Moment out;
    out.words = words_of(t_, whole);
    const int days_given =
        (m.relative_day ? 1 : 0) + (m.weekdays_span ? 1 : 0) + (m.month_days_span ? 1 : 0);
    if (m.offset) {
      if (days_given > 0 || m.times_span)
        fail(whole, "\"" + words_of(t_, m.offset->span).front() + "\" already says when");
      out.json = offset_json(*m.offset);
      if (role == Role::start && m.offset->kind == Offset::Kind::now) out.json["or_now"] = true;
      return out;
    }
    if (days_given > 1) fail(whole, "the day is given twice");
    if (m.times.size() > 1) {
      fail(*m.times_span,
           "a one-off happens once: give one time of day, or say \"every day at ...\"");
    }
    const bool explicit_time = !m.times.empty();
    TimeOfDay time;
    if (explicit_time) {
      time = m.times.front();
    } else if (role == Role::one_off) {
      time.hour = 9;
    } else if (role == Role::end) {
      time.hour = 23;
      time.minute = 59;
      time.second = 59;
    }
    if (time.midnight && days_given > 0) {
      fail(time.span,
           "\"midnight\" next to a day is ambiguous (its start or its end): say 00:00 or 23:59");
    }
    // Dates and "today"/"tomorrow" resolve at an exact wall time.
    if (m.relative_day) {
      out.json = {{"kind", "local"}, {"day", *m.relative_day}, {"time", clock_text(time)}};
    } else if (m.month_days_span && m.year) {
      out.json = {{"kind", "local"},
                  {"date", std::to_string(*m.year) + "-" + two_digits(*m.months.begin()) + "-" +
                               two_digits(*m.month_days.begin())},
                  {"time", clock_text(time)}};
    } else {
      // The others are the next occurrence of a pattern: "at 9am", "monday", "on Dec 24".
      if (m.month_days_span && (m.last_day || m.month_days.size() != 1 || m.months.size() > 1)) {
        fail(*m.month_days_span,
             "a one-off happens on one day: say \"every month on ...\" to repeat");
      }
      if (m.weekdays.size() > 1) {
        fail(*m.weekdays_span, "a one-off happens on one day: say \"every ...\" to repeat");
      }
      if (explicit_time && time.has_seconds())
        fail(time.span, "seconds need a date (on 2026-12-24 at 09:30:15)");
      const std::string day = m.month_days_span ? std::to_string(*m.month_days.begin()) : "*";
      const std::string mon = !m.months.empty() ? std::to_string(*m.months.begin()) : "*";
      const std::string dow = m.weekdays_span ? std::to_string(*m.weekdays.begin()) : "*";
      out.json = {{"kind", "next"},
                  {"cron", std::to_string(time.minute) + " " + std::to_string(time.hour) + " " +
                               day + " " + mon + " " + dow},
                  {"seconds", time.second}};
      if (m.next_weekday) {
        out.json["day"] = 1;  // "next monday": after today
      } else if (role == Role::start && !explicit_time) {
        out.json["day"] = 0;  // "starting monday": today counts
      }
    }
    // "starting today" (or "starting monday" on a Monday, or today's date) began at midnight: it
    // means from now. The database takes that only for today (nudge.resolve_moment): any other
    // start that is not ahead is refused as in the past.
    if (role == Role::start && !explicit_time) out.json["or_now"] = true;
    return out;
  }

  json offset_json(const Offset& o) const {
    switch (o.kind) {
      case Offset::Kind::now:
        return {{"kind", "after"}, {"seconds", 0}};
      case Offset::Kind::instant:
        return {{"kind", "instant"}, {"at", o.instant}};
      default:
        break;
    }
    return duration_json(o.count);
  }

  // Seconds, minutes and hours are real time; days and weeks keep the wall-clock time.
  json duration_json(const Count& n) const {
    constexpr long long kHundredYears = 100LL * 366 * 86400;
    if (n.n * unit_seconds(n.unit) > kHundredYears) fail(n.span, "is more than 100 years");
    if (n.unit == Unit::day || n.unit == Unit::week)
      return {{"kind", "days"}, {"days", n.n * (n.unit == Unit::week ? 7 : 1)}};
    return {{"kind", "after"}, {"seconds", n.n * unit_seconds(n.unit)}};
  }

  Span whole_span(const Clauses& m) const {
    Span out{t_.size(), 0};
    const auto add = [&out](const std::optional<Span>& s) {
      if (!s) return;
      out.begin = std::min(out.begin, s->begin);
      out.end = std::max(out.end, s->end);
    };
    add(m.offset ? std::optional<Span>(m.offset->span) : std::nullopt);
    add(m.relative_span);
    add(m.weekdays_span);
    add(m.month_days_span);
    add(m.months_span);
    add(m.times_span);
    add(m.once);
    if (out.begin > out.end) return Span{0, 0};
    return out;
  }

  // --- repeating ------------------------------------------------------------------------------

  void repeat(Schedule& s) {
    if (c_.offset) {
      fail(
          c_.offset->span,
          "a repeating schedule starts with \"starting ...\" (every day at 9 starting in 2 hours)");
    }
    if (c_.relative_day)
      fail(*c_.relative_span, "say \"starting " + t_[c_.relative_span->begin].word +
                                  "\" to start a repeating schedule then");
    if (c_.next_weekday)
      fail(*c_.weekdays_span, "say \"starting next ...\" to start a repeating schedule then");
    if (c_.year)
      fail(*c_.month_days_span,
           "a date with a year happens once: say \"starting ...\" or \"until ...\"");
    if (c_.once) fail(*c_.once, "\"once\" and a repeating schedule contradict each other");
    const bool calendar = c_.weekdays_span || c_.month_days_span || c_.monthly || c_.yearly ||
                          c_.months_span || c_.times_span || c_.minutes_span || c_.window;
    if (c_.every_day && c_.every_week)
      fail(*c_.every_week, "\"every day\" and \"every week\" contradict each other");
    // "every day starting tomorrow at 9": the day keeps that wall time, as "every day at 9"
    // does (days and weeks keep the wall clock), from the start on.
    if (!calendar && !c_.frequency && (c_.every_day || c_.every_week) && c_.start &&
        !c_.start->times.empty()) {
      s.schedule_type = "cron";
      s.cron = start_wall_clock_cron();
      return;
    }
    // How often, and nothing about which days or times: a fixed interval.
    if (!calendar &&
        (c_.frequency ? 1 : 0) + (c_.every_day ? 1 : 0) + (c_.every_week ? 1 : 0) == 1) {
      const Count n = c_.frequency   ? *c_.frequency
                      : c_.every_day ? Count{1, Unit::day, *c_.every_day}
                                     : Count{1, Unit::week, *c_.every_week};
      // "every 2 days starting Monday at 9" would name a wall time a fixed interval drifts from.
      if ((n.unit == Unit::day || n.unit == Unit::week) && c_.start && !c_.start->times.empty())
        refuse_days_at_a_time(n);
      const long long seconds = n.n * unit_seconds(n.unit);
      if (seconds > kMaxIntervalSeconds) fail(n.span, "the interval is at most 366 days");
      s.schedule_type = "recurring";
      s.interval_seconds = static_cast<int>(seconds);
      return;
    }
    s.schedule_type = "cron";
    s.cron = cron_text();
  }

  // Rule 8: a day or week counted as a fixed interval drifts from a wall time across daylight
  // saving, and a calendar schedule cannot count days or weeks.
  [[noreturn]] void refuse_days_at_a_time(const Count& f) const {
    const std::string every = "every " + std::to_string(f.n) + " " + unit_name(f.unit) + "s";
    fail(f.span, every +
                     " at a time or on a day cannot keep that wall time across daylight saving: "
                     "say \"every " +
                     unit_name(f.unit) + "\", or \"" + every + "\" alone");
  }

  std::string cron_text() const {
    std::string minutes, hours;
    const Count* f = c_.frequency ? &*c_.frequency : nullptr;
    if (f && f->unit == Unit::second)
      fail(f->span, "a calendar schedule has no seconds; \"every N seconds\" repeats alone");
    if (f && (f->unit == Unit::day || f->unit == Unit::week) && f->n > 1) refuse_days_at_a_time(*f);
    if (c_.times_span) {
      if (f) fail(f->span, "how often and the times of day are both given: say one");
      if (c_.minutes_span) fail(*c_.minutes_span, "the minute is given beside times of day");
      if (c_.window) fail(*c_.window_span, "a window is given beside times of day");
      std::set<int> hs, ms;
      std::set<std::pair<int, int>> all;
      for (const auto& t : c_.times) {
        if (t.has_seconds()) fail(t.span, "a repeating time of day has no seconds");
        if (t.midnight && (c_.weekdays_span || c_.month_days_span)) {
          fail(t.span,
               "\"midnight\" next to a day is ambiguous (its start or its end): say "
               "00:00 or 23:59");
        }
        hs.insert(t.hour);
        ms.insert(t.minute);
        all.insert({t.hour, t.minute});
      }
      if (all.size() != hs.size() * ms.size()) {
        fail(*c_.times_span,
             "these times are not one cron schedule (every hour listed must have the same "
             "minutes): make two reminders");
      }
      minutes = field(ms);
      hours = field(hs);
    } else if (f && f->unit == Unit::minute) {
      if (f->n >= 60) {
        fail(f->span, "every " + std::to_string(f->n) +
                          " minutes is an hour or more: say it in hours (every hour, every 2 "
                          "hours) for a calendar schedule");
      }
      if (60 % f->n != 0) {
        fail(f->span, "a calendar schedule restarts its minutes at each hour's :00, so every " +
                          std::to_string(f->n) +
                          " minutes would not be evenly spaced: use one that divides 60 (5, "
                          "10, 15, 20, 30)");
      }
      if (c_.minutes_span) fail(*c_.minutes_span, "the minute is given beside \"every N minutes\"");
      minutes = f->n == 1 ? "*" : "*/" + std::to_string(f->n);
      hours = c_.window ? window_hours(1) : "*";
    } else if (f && f->unit == Unit::hour) {
      minutes = c_.minutes_span ? field(c_.minutes) : "0";
      if (c_.window) {
        hours = window_hours(f->n);
      } else if (f->n >= 24) {
        fail(f->span, "every " + std::to_string(f->n) +
                          " hours is a day or more: say the days and the time (every day at 9, "
                          "every weekday at 9)");
      } else if (24 % f->n != 0) {
        fail(f->span, "a calendar schedule restarts its hours at midnight, so every " +
                          std::to_string(f->n) +
                          " hours would not be evenly spaced: use one that divides 24 (2, 3, 4, "
                          "6, 8, 12)");
      } else {
        hours = f->n == 1 ? "*" : "*/" + std::to_string(f->n);
      }
    } else if (c_.minutes_span) {
      minutes = field(c_.minutes);
      hours = c_.window ? window_hours(1) : "*";
    } else if (c_.window) {
      fail(*c_.window_span, "a window needs how often: every 15 minutes between ...");
    } else {
      minutes = "0";  // a day without a time: 09:00
      hours = "9";
    }
    return minutes + " " + hours + " " + days_text();
  }

  // "every day/week starting <day> at <time>": M H * * *, or M H * * <the start's weekday>.
  std::string start_wall_clock_cron() const {
    const Clauses& start = *c_.start;
    const TimeOfDay& t = start.times.front();
    if (t.has_seconds()) fail(t.span, "a repeating time of day has no seconds");
    std::string dow = "*";
    if (c_.every_week) {
      if (start.weekdays_span && start.weekdays.size() == 1) {
        dow = std::to_string(*start.weekdays.begin());
      } else if (start.month_days_span && start.year && start.month_days.size() == 1 &&
                 start.months.size() == 1) {
        dow = std::to_string(
            weekday_of(*start.year, *start.months.begin(), *start.month_days.begin()));
      } else {
        fail(*c_.every_week,
             "\"every week\" from a start at a time of day keeps that time on the start's day of "
             "the week, which must be named: a weekday (every wednesday at 09:00) or a date with "
             "its year (starting on 2027-03-10 at 09:00), not today, tomorrow or a date without "
             "its year");
      }
    }
    return std::to_string(t.minute) + " " + std::to_string(t.hour) + " * * " + dow;
  }

  // The day of the week of a date, 0 = Sunday (Sakamoto's method, proleptic Gregorian).
  static int weekday_of(int year, int month, int day) {
    static constexpr int kShift[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (month < 3) --year;
    return (year + year / 4 - year / 100 + year / 400 + kShift[month - 1] + day) % 7;
  }

  std::string window_hours(long long step) const {
    const auto [from, to] = *c_.window;
    std::string out =
        from == to ? std::to_string(from) : std::to_string(from) + "-" + std::to_string(to);
    if (step > 1) out += "/" + std::to_string(step);
    return out;
  }

  // day-of-month, month and day-of-week fields
  std::string days_text() const {
    if (c_.every_day && (c_.weekdays_span || c_.month_days_span))
      fail(*c_.every_day, "\"every day\" and the days given contradict each other");
    if (c_.every_week && !c_.weekdays_span)
      fail(*c_.every_week, "say which day of the week (every monday at 9)");
    if (c_.weekdays_span && c_.month_days_span) {
      fail(*c_.month_days_span,
           "a day of the month and a day of the week together: cron fires on either one, which "
           "is rarely what is meant; make two reminders");
    }
    if (c_.monthly && !c_.month_days_span)
      fail(*c_.monthly, "say on which day of the month (every month on the 1st)");
    if (c_.yearly && !(c_.month_days_span && c_.months_span && !c_.months_filter))
      fail(*c_.yearly, "say on which date (every year on December 24)");
    if (c_.monthly && c_.months_span && !c_.months_filter)
      fail(*c_.months_span, "\"every month\" and the months given contradict each other");
    if (c_.month_days_span && !c_.monthly && !c_.yearly && !c_.months_filter)
      fail(*c_.month_days_span, "say \"every month on ...\" to repeat on a day of the month");
    std::string dom = "*", mon = "*", dow = "*";
    if (c_.month_days_span) {
      dom = c_.month_days.empty() ? "" : field(c_.month_days);
      if (c_.last_day) dom += dom.empty() ? "L" : ",L";
    }
    if (c_.months_span) {
      // With the months named, each day given must exist in each of them (29 February does).
      for (const int m : c_.months) {
        for (const int d : c_.month_days) {
          if (d > days_in_month(m)) {
            fail(*c_.month_days_span,
                 std::string(month_name(m)) + " has no day " + std::to_string(d));
          }
        }
      }
      mon = field(c_.months);
    }
    if (c_.weekdays_span) dow = field(c_.weekdays);
    return dom + " " + mon + " " + dow;
  }

  // --- bounds ---------------------------------------------------------------------------------

  void only_bounds_beside(Span what, const std::string& name) const {
    const auto check = [&](bool given, const std::optional<Span>& span) {
      if (given) fail(span.value_or(what), "only bounds and a zone go with " + name);
    };
    check(c_.offset.has_value(), c_.offset ? std::optional<Span>(c_.offset->span) : std::nullopt);
    check(c_.relative_day.has_value(), c_.relative_span);
    check(c_.weekdays_span.has_value(), c_.weekdays_span);
    check(c_.month_days_span.has_value() || c_.months_span.has_value(),
          c_.month_days_span ? c_.month_days_span : c_.months_span);
    check(c_.monthly.has_value(), c_.monthly);
    check(c_.every_day.has_value(), c_.every_day);
    check(c_.every_week.has_value(), c_.every_week);
    check(c_.yearly.has_value(), c_.yearly);
    check(c_.frequency.has_value(),
          c_.frequency ? std::optional<Span>(c_.frequency->span) : std::nullopt);
    check(c_.times_span.has_value(), c_.times_span);
    check(c_.minutes_span.has_value(), c_.minutes_span);
    check(c_.window_span.has_value(), c_.window_span);
    check(c_.once.has_value(), c_.once);
  }

  void bounds(Schedule& s) const {
    if (c_.flag) s.stop_flag = *c_.flag;
    if (s.schedule_type == "one_time") return;
    if (c_.start) s.run_at = moment(*c_.start, Role::start);
    if (c_.until && c_.duration) fail(c_.duration->span, "the end is given twice");
    if (c_.until) s.ends_at = moment(*c_.until, Role::end);
    if (c_.duration) {
      s.ends_at = Moment{duration_json(*c_.duration), words_of(t_, c_.duration->span)};
    }
    if (c_.max_fires) s.max_fires = *c_.max_fires;
  }

  const std::vector<Token>& t_;
  const Clauses& c_;
  std::string default_zone_;
};

}  // namespace

Result parse(const std::string& text, const std::string& default_zone) {
  Result out;
  const Tokens tokens = tokenize(text);
  if (tokens.unterminated) {
    out.refusal = {{*tokens.unterminated}, "a quote is not closed"};
    return out;
  }
  if (tokens.tokens.empty()) {
    out.refusal = {{}, "the text is empty"};
    return out;
  }
  try {
    const Clauses clauses = parse_clauses(tokens.tokens);
    out.schedule = Builder(tokens.tokens, clauses, default_zone).build();
  } catch (const Refused& r) {
    out.refusal = r.refusal;
  }
  return out;
}

}  // namespace nudge::api::words
