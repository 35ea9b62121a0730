#pragma once
// Shared by the real-process tests: a fresh database, nudge-worker child processes pointed at
// it, and the questions every such test asks (how many fired, who holds leases, what the
// workers delivered).

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/processes.hpp"
#include "support/test_database.hpp"

namespace nudge::test {

using namespace std::chrono_literals;

// Generous: the suite runs beside a sanitizer build on a shared 2-core machine.
inline constexpr auto kSlow = 60s;

class ProcessTest : public DatabaseTest {
 protected:
  ProcessTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("nudge-proc-" + std::to_string(::getpid()) + "-" + db_.name());
    std::filesystem::create_directories(dir_);
  }
  ~ProcessTest() override {
    workers_.clear();  // SIGKILLs whatever still runs
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Settings every test worker gets; `overrides` win. A long idle cap proves waking is not polling;
  // loopback is opened for the tests' receivers.
  std::map<std::string, std::string> worker_env(
      const std::string& url, const std::map<std::string, std::string>& overrides = {}) const {
    std::map<std::string, std::string> env{{"NUDGE_DATABASE_URL", url},
                                           {"NUDGE_WORKER_IDLE_CAP_SECONDS", "300"},
                                           {"NUDGE_LOG_LEVEL", "info"},
                                           {kAllowPrivate, kLoopbackNetworks}};
    for (const auto& [k, v] : overrides) env[k] = v;
    return env;
  }

  // Starts a worker on this test's database; its output goes to <dir>/worker-N.log.
  ChildProcess& start_worker(const std::map<std::string, std::string>& overrides = {},
                             const std::string& url = "") {
    const auto path = dir_ / ("worker-" + std::to_string(workers_.size() + 1) + ".log");
    workers_.push_back(std::make_unique<ChildProcess>(
        worker_command(), worker_env(url.empty() ? db_.url() : url, overrides), path.string()));
    return *workers_.back();
  }

  // Inserts `n` one_time reminders due now in one statement (one notification).
  void insert_due(int n, const std::string& entity_type = "proc") {
    sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
        "next_run_at) SELECT $1, g::text, 'due', 'log', 'one_time', now() "
        "FROM generate_series(1, $2) g",
        entity_type, n);
  }

  long executions() { return value<long>("SELECT count(*) FROM nudge.executions"); }

  // Polls until `n` executions are recorded; false on timeout.
  bool wait_for_executions(long n, std::chrono::milliseconds timeout = kSlow) {
    return wait_until(
        timeout, [&] { return executions() >= n; }, 50ms);
  }

  // Rows leased by the worker with this pid (owner ids are "host:pid:random/loop").
  long leased_by(pid_t pid) {
    return value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by LIKE $1",
                       "%:" + std::to_string(pid) + ":%");
  }

  // Statements running now on the connections of the worker with this pid (each connection's
  // application_name is its owner id).
  long running_statements_of(pid_t pid) {
    return value<long>(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1 AND state = 'active'",
        "%:" + std::to_string(pid) + ":%");
  }

  // The idempotency keys of every fire line the workers printed (the log channel's delivery).
  std::vector<std::string> delivered_keys() const {
    std::vector<std::string> keys;
    const std::string marker = "\"idempotency_key\":\"";
    for (const auto& w : workers_) {
      std::istringstream in(w->log());
      for (std::string line; std::getline(in, line);) {
        const auto at = line.find(marker);
        if (at == std::string::npos) continue;
        const auto start = at + marker.size();
        keys.push_back(line.substr(start, line.find('"', start) - start));
      }
    }
    return keys;
  }

  std::string all_logs() const {
    std::string out;
    for (const auto& w : workers_) out += "--- " + w->log_path() + "\n" + w->log();
    return out;
  }

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

}  // namespace nudge::test
