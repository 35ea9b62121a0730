// nudge-stream-reader: GET /v1/stream clients, for scripts/bench.sh stream. Opens STREAMS streams
// to 127.0.0.1:PORT; the first reads every message and, for each `reminder` `fired` one, takes
// the time from the fire's commit (its execution's fired_at, the database clock on this same
// machine: the start of the finishing transaction, so a little more than the commit) to the
// message's arrival; the others read every byte and decode none, looking only for a `lagged`
// event (they run on the server's own cores, where real clients would not). Ends after FIRES
// fired messages, or when no message came for 10 s. Prints one JSON object: messages, fired,
// lagged, latency p50/p99/max in ms, the server's resident memory (VmRSS of --pid) with every
// stream open, and the CPU seconds this reader used.
// Usage: nudge-stream-reader PORT STREAMS FIRES [--pid PID]; NUDGE_BENCH_TOKEN, when set, is sent
// as the bearer token.

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/sse_client.hpp"

namespace {

using namespace std::chrono_literals;

double rfc3339_epoch_seconds(const std::string& text) {
  // "2026-12-02T03:01:02.123456+00:00": the database answers in UTC.
  std::tm tm{};
  if (::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  double seconds = static_cast<double>(::timegm(&tm));
  const auto dot = text.find('.');
  if (dot != std::string::npos) seconds += std::strtod(text.c_str() + dot, nullptr);
  return seconds;
}

// The execution's fired_at of a `fired` reminder message, found without parsing the whole
// message (the reader runs on the server's cores): the change is its first field and the
// execution its last object, whose strings are escaped, so the key cannot appear inside them.
std::optional<std::string> fired_at_of(const std::string& data) {
  static const std::string kFired = R"({"change":"fired",)", kExecution = R"(,"execution":{)",
                           kFiredAt = R"("fired_at":")";
  if (data.rfind(kFired, 0) != 0) return std::nullopt;
  const auto execution = data.rfind(kExecution);
  if (execution == std::string::npos) return std::nullopt;
  const auto key = data.find(kFiredAt, execution);
  if (key == std::string::npos) return std::nullopt;
  const auto from = key + kFiredAt.size();
  const auto to = data.find('"', from);
  if (to == std::string::npos) return std::nullopt;
  return data.substr(from, to - from);
}

double now_epoch_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

long rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: nudge-stream-reader PORT STREAMS FIRES [--pid PID]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int streams = std::atoi(argv[2]);
  const long fires = std::atol(argv[3]);
  const int pid = argc >= 6 ? std::atoi(argv[5]) : 0;

  // scripts/bench.sh runs nudge-api with tokens on, and gives the token it made.
  const char* token = std::getenv("NUDGE_BENCH_TOKEN");
  const std::string headers =
      token != nullptr ? "Authorization: Bearer " + std::string(token) + "\r\n" : "";
  std::vector<std::unique_ptr<nudge::test::SseClient>> clients;
  for (int i = 0; i < streams; ++i) {
    clients.push_back(std::make_unique<nudge::test::SseClient>(port, "/v1/stream", headers));
    if (clients.back()->answer().status != 200) {
      std::fprintf(stderr, "stream %d: status %d\n", i, clients.back()->answer().status);
      return 1;
    }
  }
  // The other streams are read by a thread each, as separate clients would read them.
  std::atomic<bool> done{false};
  std::atomic<long> lagged{0};
  std::vector<std::thread> others;
  for (std::size_t i = 1; i < clients.size(); ++i) {
    others.emplace_back([&, i] {
      while (!done.load()) {
        if (clients[i]->discard(200ms)) ++lagged;
        if (clients[i]->ended()) return;
      }
    });
  }
  std::printf("{\"ready\":true,\"api_rss_kib\":%ld}\n", pid ? rss_kib(pid) : 0L);
  std::fflush(stdout);

  long messages = 0, fired = 0;
  long rss = 0;
  std::vector<double> latencies_ms;
  while (fired < fires) {
    const auto m = clients[0]->next_event(10s);
    if (!m) break;
    ++messages;
    if (m->event == "lagged") {
      ++lagged;
      break;
    }
    if (m->event != "reminder") continue;
    const double arrived = now_epoch_seconds();
    const auto fired_at = fired_at_of(m->data);
    if (!fired_at) continue;
    ++fired;
    latencies_ms.push_back((arrived - rfc3339_epoch_seconds(*fired_at)) * 1000);
    if (fired == fires / 2 && pid) rss = rss_kib(pid);
  }
  done = true;
  for (auto& t : others) t.join();
  rusage used{};
  ::getrusage(RUSAGE_SELF, &used);
  const double cpu_s = static_cast<double>(used.ru_utime.tv_sec + used.ru_stime.tv_sec) +
                       static_cast<double>(used.ru_utime.tv_usec + used.ru_stime.tv_usec) / 1e6;
  const double p50 = percentile(latencies_ms, 0.5), p99 = percentile(latencies_ms, 0.99),
               max = percentile(latencies_ms, 1.0);
  std::printf(
      "{\"streams\":%d,\"messages\":%ld,\"fired\":%ld,\"lagged\":%ld,\"p50_ms\":%.1f,"
      "\"p99_ms\":%.1f,\"max_ms\":%.1f,\"api_rss_kib_during\":%ld,\"reader_cpu_s\":%.2f}\n",
      streams, messages, fired, lagged.load(), p50, p99, max, rss, cpu_s);
  return 0;
}
