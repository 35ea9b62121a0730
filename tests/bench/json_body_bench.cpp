// Benchmark helper: how long nudge-api takes to read the body of a 1,000-item batch create
// (api/input.hpp parse_object, which refuses a key given twice) against nlohmann::json's own
// parse, which it replaced. Prints one JSON line: body bytes, rounds, and the median parse time
// of each in microseconds of CPU time.
//
// Usage: nudge-json-body-bench [ROUNDS]   (default 200)

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "input.hpp"

namespace {

std::string batch_body() {
  nlohmann::json items = nlohmann::json::array();
  for (int i = 0; i < 1000; ++i) {
    items.push_back({{"entity_type", "invoice"},
                     {"entity_id", "inv-" + std::to_string(i)},
                     {"event_type", "payment_due"},
                     {"channel", "webhook"},
                     {"target", "https://example.com/hooks/nudge"},
                     {"schedule_type", "recurring"},
                     {"interval_seconds", 86400},
                     {"run_at", "2027-01-01T09:00:00Z"},
                     {"stop_condition_type", "db_check"},
                     {"stop_condition_value", "invoice_paid_" + std::to_string(i)},
                     {"max_fires", 5},
                     {"payload", {{"amount", 1250}, {"currency", "EUR"}, {"customer", "c-42"}}}});
  }
  return nlohmann::json{{"items", items}}.dump();
}

// CPU time of this thread, so that time the machine gives other processes is not counted.
double cpu_micros() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;
  const std::string body = batch_body();
  std::size_t sink = 0;
  std::vector<double> plain, unique;
  // Alternating round by round, so that both see the same machine; round -1 warms up.
  for (int round = -1; round < rounds; ++round) {
    double t0 = cpu_micros();
    sink += nlohmann::json::parse(body).size();
    double t1 = cpu_micros();
    sink += nudge::api::parse_object(body).size();
    double t2 = cpu_micros();
    if (round < 0) continue;
    plain.push_back(t1 - t0);
    unique.push_back(t2 - t1);
  }
  std::printf(
      "{\"body_bytes\":%zu,\"rounds\":%d,\"json_parse_p50_us\":%.1f,\"parse_object_p50_us\":%.1f,"
      "\"sink\":%zu}\n",
      body.size(), rounds, median(plain), median(unique), sink);
  return 0;
}
