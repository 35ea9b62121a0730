#pragma once
// The worker's small HTTP listener ([worker] metrics_port, loopback by default): GET /metrics
// (the registry, plus the database's gauges from nudge.gauges), /livez and /readyz. It has one
// database connection of its own, opened when first needed and reopened after it breaks, so a
// scrape never waits for the claim loops nor they for it. A connection is answered once its
// request's head has arrived (HeadGate: within 2 s), one request a connection, so that slow
// clients cannot keep the threads that answer from a probe.

#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "head_gate.hpp"
#include "nudge/config.hpp"
#include "nudge/health.hpp"
#include "nudge/metrics.hpp"
#include "worker_health.hpp"

namespace httplib {
class ThreadPool;
}

namespace nudge {

class MetricsListener {
 public:
  // Registers the database's gauges with `registry`, which must outlive this, as `health` (what
  // the claim loops report, added to /readyz) must.
  MetricsListener(const Config& config, metrics::Registry& registry, std::string application_name,
                  const WorkerHealth& health);
  ~MetricsListener();
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;

  // Listens on [worker] metrics_address:metrics_port and serves on a thread of its own; when it
  // cannot listen, the reason ("Address already in use").
  std::optional<std::string> start();
  void stop();

 private:
  class Server;

  // On a thread of threads_: answers the one request whose head HeadGate received.
  void serve(int fd, std::string received);
  void write_database_gauges(metrics::TextWriter& out);
  std::vector<health::CheckResult> readiness();
  // The connection, opened if need be; nullptr (and the reason logged) when it cannot be.
  pqxx::connection* connection();

  const Config& config_;
  metrics::Registry& registry_;
  const std::string application_name_;
  const WorkerHealth& health_;
  std::unique_ptr<Server> server_;
  std::thread serving_;  // httplib's: accepts, and hands each connection to gate_
  std::unique_ptr<httplib::ThreadPool> threads_;
  std::unique_ptr<HeadGate> gate_;
  std::mutex mutex_;  // the connection: scrapes and health checks take turns
  std::unique_ptr<pqxx::connection> conn_;
  // What the server said when it refused the last connection (FATAL: too many connections for
  // role ...), or "" when it could not be reached at all: /readyz names it (explore22a F11).
  std::string refused_because_;
};

}  // namespace nudge
