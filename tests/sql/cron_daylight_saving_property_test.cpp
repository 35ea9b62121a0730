// Cron across the 2026 daylight-saving changes of Europe/Berlin, America/New_York and
// Australia/Lord_Howe, as a property of random expressions: their next 50 fires (from
// nudge.preview_schedule) come in order and never repeat an instant, and within three hours of
// the change they are exactly the instants an independent oracle expects. The oracle shares
// nothing with nudge.cron_next or nudge.cron_parse: it knows each change from zdump (the instant,
// the offsets before and after), and matches local times in C++ against the values the
// generator chose for each field. Its rules are the README's: a repeated local time fires once
// (the first time) unless the hour field begins with '*', then at both instants; local times in
// a gap collapse into one fire at the gap's end.
//
// Every run draws a new seed; a failure names it, and NUDGE_TEST_SEED=<seed> replays the run.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "support/test_database.hpp"
#include "support/test_seed.hpp"

namespace nudge::test {
namespace {

// A change of a zone's UTC offset: from `before` to `after` seconds, at instant `at`.
struct Change {
  const char* zone;
  const char* at;  // UTC, "YYYY-MM-DD HH:MM"
  int before;
  int after;
};

// zdump -v -c 2026,2027 <zone>: the fall-backs, then the springs forward.
const Change kChanges[] = {
    {"Europe/Berlin", "2026-10-25 01:00", 7200, 3600},
    {"America/New_York", "2026-11-01 06:00", -14400, -18000},
    {"Australia/Lord_Howe", "2026-04-04 15:00", 39600, 37800},
    {"Europe/Berlin", "2026-03-29 01:00", 3600, 7200},
    {"America/New_York", "2026-03-08 07:00", -18000, -14400},
    {"Australia/Lord_Howe", "2026-10-03 15:30", 37800, 39600},
};

constexpr int kTrials = 600;
constexpr int kFires = 50;
constexpr std::time_t kMinute = 60;
constexpr std::time_t kWindow = 3 * 3600;  // the oracle's reach on each side of the change

std::time_t utc(const char* text) {
  std::tm tm{};
  strptime(text, "%Y-%m-%d %H:%M", &tm);
  return timegm(&tm);
}

std::string utc_text(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%d %H:%M:%SZ", &tm);
  return out;
}

// What a wall clock shows; wall() reads it from seconds since 1970-01-01 00:00 on that clock.
struct Wall {
  int minute, hour, day, month, weekday;
};
Wall wall(std::time_t local_seconds) {
  std::tm tm{};
  gmtime_r(&local_seconds, &tm);
  return {tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon + 1, tm.tm_wday};
}

// One cron field: its text and the values it stands for (bit v: value v).
struct Field {
  std::string text;
  std::uint64_t values = 0;
  bool star() const { return text[0] == '*'; }
  bool has(int v) const { return (values >> v) & 1; }
};

struct Expression {
  Field minute, hour, day, month, weekday;
  std::string text() const {
    return minute.text + " " + hour.text + " " + day.text + " " + month.text + " " + weekday.text;
  }
  // Classic cron: when both day fields are restricted, either one matching is enough.
  bool matches(const Wall& w) const {
    const bool dom = day.has(w.day);
    const bool dow = weekday.has(w.weekday);
    return minute.has(w.minute) && hour.has(w.hour) && month.has(w.month) &&
           (day.star() || weekday.star() ? dom && dow : dom || dow);
  }
};

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(int percent) { return pick(1, 100) <= percent; }

  // lo-hi/step over [lo, hi], written as `text`.
  static Field span(const std::string& text, int lo, int hi, int step = 1) {
    Field f{text, 0};
    for (int v = lo; v <= hi; v += step) f.values |= std::uint64_t{1} << v;
    return f;
  }
  static Field list(const std::vector<int>& values) {
    Field f{"", 0};
    for (int v : values) {
      f.text += (f.text.empty() ? "" : ",") + std::to_string(v);
      f.values |= std::uint64_t{1} << v;
    }
    return f;
  }

  Field minute() {
    const int a = pick(0, 59), b = std::min(59, a + pick(1, 25)), k = pick(2, 20);
    switch (pick(0, 6)) {
      case 0:
        return span("*", 0, 59);
      case 1:
        return span("*/" + std::to_string(k), 0, 59, k);
      case 2:
        return span(std::to_string(a) + "-" + std::to_string(b), a, b);
      case 3:
        return span(std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(k), a, b, k);
      case 4:
        return span(std::to_string(a) + "/" + std::to_string(k), a, 59, k);
      case 5:
        return list({a, pick(0, 59), pick(0, 59)});
      default:
        return list({a});
    }
  }
  // Mostly a '*' hour (the repeated hour fires twice), sometimes fixed hours around the change.
  Field hour() {
    const int k = pick(2, 12), a = pick(0, 3), b = pick(a, 5);
    switch (pick(0, 7)) {
      case 0:
      case 1:
      case 2:
        return span("*", 0, 23);
      case 3:
        return span("*/1", 0, 23);
      case 4:
        return span("*/" + std::to_string(k), 0, 23, k);
      case 5:
        return list({pick(0, 4)});
      case 6:
        return span(std::to_string(a) + "-" + std::to_string(b), a, b);
      default:
        // Step 2 or more: nudge.cron_parse reads "n/1" as n alone, not n-23 (left for its own fix).
        return span(std::to_string(a) + "/" + std::to_string(k), a, 23, k);
    }
  }
  // Mostly any day; else days that include the change's (local) day or miss it. Days stay
  // within 1-29 so every month of the change has them.
  Field day(int change_day) {
    const int k = pick(2, 10);
    switch (pick(0, 9)) {
      case 0:
        return span("*/" + std::to_string(k), 1, 31, k);
      case 1:
      case 2:
        return list({change_day, pick(1, 28)});
      case 3:
        return list({std::max(1, change_day - 1 - pick(0, 2))});
      default:
        return span("*", 1, 31);
    }
  }
  Field month(int change_month) {
    switch (pick(0, 9)) {
      case 0:
      case 1:
        return list({change_month});
      case 2:
        return span(std::to_string(change_month) + "-12", change_month, 12);
      case 3:
        return span("*/2", 1, 12, 2);
      default:
        return span("*", 1, 12);
    }
  }
  // Every 2026 change is on a Sunday.
  Field weekday() {
    switch (pick(0, 9)) {
      case 0:
        return span("0", 0, 0);
      case 1:
        return {"7", 1};  // 7 is Sunday too
      case 2:
        return span("1-5", 1, 5);
      case 3:
        return {"6,0", (1 << 6) | 1};
      case 4:
        return span("*/2", 0, 6, 2);
      default:
        return span("*", 0, 6);
    }
  }

 private:
  std::mt19937_64 rng_;
};

// The instants the README's rules fire `e` at, between `from` (excluded) and `to` (included),
// near `change`.
std::vector<std::string> expected_fires(const Expression& e, const Change& change, std::time_t from,
                                        std::time_t to) {
  const std::time_t at = utc(change.at);
  const bool falls_back = change.before > change.after;
  std::vector<std::string> out;
  for (std::time_t t = from / kMinute * kMinute + kMinute; t <= to; t += kMinute) {
    bool fires = false;
    if (!falls_back && t == at) {
      // The local times the clock skips collapse into its first instant after the gap.
      for (std::time_t l = at + change.before; l < at + change.after; l += kMinute) {
        fires = fires || e.matches(wall(l));
      }
    }
    const std::time_t offset = t < at ? change.before : change.after;
    const bool second_pass = falls_back && t >= at && t < at + (change.before - change.after);
    fires = fires || (e.matches(wall(t + offset)) && (!second_pass || e.hour.star()));
    if (fires) out.push_back(utc_text(t));
  }
  return out;
}

class CronDaylightSaving : public DatabaseTest {};

TEST_F(CronDaylightSaving, RandomSchedulesFireEveryMatchingInstantOnceAndInOrder) {
  const std::uint64_t run_seed = nudge::test::test_seed();
  Generator g(run_seed);
  int both_passes = 0;  // trials that fired in both passes of a repeated hour
  for (int trial = 0; trial < kTrials && !HasFailure(); ++trial) {
    const Change& change = kChanges[g.chance(80) ? g.pick(0, 2) : g.pick(3, 5)];
    const std::time_t at = utc(change.at);
    const Wall change_day = wall(at + change.after);
    Expression e{g.minute(), g.hour(), g.day(change_day.day), g.month(change_day.month),
                 g.weekday()};
    // Mostly before the change, where both passes are ahead; else inside or after the second.
    const std::time_t from =
        at - 120 * kMinute + g.pick(0, 180) * kMinute + (g.chance(50) ? g.pick(1, 59) : 0);
    SCOPED_TRACE("seed " + std::to_string(run_seed) + " (NUDGE_TEST_SEED replays it), trial " +
                 std::to_string(trial) + ": '" + e.text() + "' in " + change.zone + " after " +
                 utc_text(from));

    std::vector<std::time_t> fires;
    for (const auto& row : sql("SELECT extract(epoch FROM t::timestamptz)::bigint"
                               "  FROM nudge.preview_schedule('cron', to_timestamp($1), $2,"
                               "         p_cron => $3, p_timezone => $4) WITH ORDINALITY p(t, n)"
                               " ORDER BY n",
                               static_cast<long long>(from), kFires, e.text(), change.zone)) {
      fires.push_back(row[0].as<std::time_t>());
    }
    for (std::size_t i = 0; i < fires.size(); ++i) {
      ASSERT_GT(fires[i], i == 0 ? from : fires[i - 1])
          << "fire " << i << ": in order, never twice";
    }

    // Fewer fires only past 9999 (nudge.cron_next finds the next occurrence however far).
    const std::time_t until = fires.size() == static_cast<std::size_t>(kFires)
                                  ? std::min(fires.back(), at + kWindow)
                                  : at + kWindow;
    std::vector<std::string> fired;
    for (std::time_t t : fires) {
      if (t <= until) fired.push_back(utc_text(t));
    }
    ASSERT_EQ(fired, expected_fires(e, change, from, until));

    const std::time_t repeated = change.before - change.after;  // negative for a gap
    const bool in_first_pass = std::any_of(
        fires.begin(), fires.end(), [&](std::time_t t) { return t >= at - repeated && t < at; });
    const bool in_second_pass = std::any_of(
        fires.begin(), fires.end(), [&](std::time_t t) { return t >= at && t < at + repeated; });
    both_passes += in_first_pass && in_second_pass;
  }
  // The generator is only useful if it keeps landing in both passes of a repeated hour.
  EXPECT_GT(both_passes, kTrials / 20) << "seed " << run_seed;
}

}  // namespace
}  // namespace nudge::test
