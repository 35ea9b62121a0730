// Benchmark helper (scripts/bench.sh words): how long one parse of a schedule in words takes, in
// the code nudge-api runs for POST /v1/schedules/parse before its one database round trip
// (api/schedule_words.hpp), over every phrase of the test tables, accepted and refused. Prints
// one JSON line: calls, p50, p99 and max in microseconds.
//
// Usage: nudge-words-bench [ROUNDS]   (default 200 rounds over all phrases)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "schedule_words.hpp"
#include "schedule_words_cases.hpp"

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;
  namespace cases = nudge::test::words;
  std::vector<std::pair<std::string, std::string>> phrases;
  for (const auto& c : cases::kAccepted) phrases.emplace_back(c.text, c.zone);
  for (const auto& c : cases::kRefused) phrases.emplace_back(c.text, cases::kZone);

  std::vector<double> micros;
  micros.reserve(phrases.size() * static_cast<std::size_t>(rounds));
  std::size_t understood = 0;
  for (int round = -1; round < rounds; ++round) {  // round -1 warms up
    for (const auto& [text, zone] : phrases) {
      const auto start = std::chrono::steady_clock::now();
      const auto result = nudge::api::words::parse(text, zone);
      const auto end = std::chrono::steady_clock::now();
      if (round < 0) continue;
      understood += result.schedule ? 1 : 0;
      micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
    }
  }
  std::sort(micros.begin(), micros.end());
  const auto at = [&micros](double q) {
    return micros[std::min(micros.size() - 1, static_cast<std::size_t>(q * micros.size()))];
  };
  std::printf(
      "{\"bench\":\"parse_words\",\"phrases\":%zu,\"calls\":%zu,\"understood\":%zu,"
      "\"p50_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f}\n",
      phrases.size(), micros.size(), understood, at(0.50), at(0.99), micros.back());
  return 0;
}
