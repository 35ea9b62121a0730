// nudge-webhook-sink: a fast webhook receiver for scripts/bench.sh. Counts requests and distinct
// Idempotency-Keys; with --fail-once-percent P, the first request of about P% of the keys
// (chosen by a hash of the key, so the expected count is known) answers 503.
// Usage: nudge-webhook-sink PORT [--fail-once-percent P]; GET /stats answers
// {"requests":N,"distinct_keys":D,"failed":F}. Stops on SIGTERM or SIGINT.

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_set>

namespace {

httplib::Server* g_server = nullptr;

void on_signal(int) {
  if (g_server != nullptr) g_server->stop();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: nudge-webhook-sink PORT [--fail-once-percent P]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  int fail_percent = 0;
  if (argc >= 4 && std::string(argv[2]) == "--fail-once-percent") fail_percent = std::atoi(argv[3]);

  std::mutex mutex;
  std::unordered_set<std::string> seen;
  std::atomic<long> requests{0};
  std::atomic<long> failed{0};

  httplib::Server server;
  // Keep-alive connections each hold a thread: room for every worker's deliveries in flight.
  server.new_task_queue = [] { return new httplib::ThreadPool(512); };
  server.Post(R"(/.*)", [&](const httplib::Request& req, httplib::Response& res) {
    ++requests;
    const std::string key = req.get_header_value("Idempotency-Key");
    bool first = false;
    {
      std::lock_guard lock(mutex);
      first = seen.insert(key).second;
    }
    if (first && fail_percent > 0 &&
        std::hash<std::string>{}(key) % 100 < static_cast<std::size_t>(fail_percent)) {
      ++failed;
      res.status = 503;
      return;
    }
    res.status = 204;
  });
  server.Get("/stats", [&](const httplib::Request&, httplib::Response& res) {
    std::size_t distinct = 0;
    {
      std::lock_guard lock(mutex);
      distinct = seen.size();
    }
    res.set_content("{\"requests\":" + std::to_string(requests.load()) +
                        ",\"distinct_keys\":" + std::to_string(distinct) +
                        ",\"failed\":" + std::to_string(failed.load()) + "}",
                    "application/json");
  });
  // As in nudge-api: Debian's httplib leaves Nagle on, which makes every answer written in two
  // parts wait for the client's delayed ACK (40 ms); and a real listen backlog, so hundreds of
  // deliveries connecting at once are not dropped.
  int listen_fd = -1;
  server.set_socket_options([&listen_fd](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    listen_fd = fd;
  });
  g_server = &server;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  if (!server.bind_to_port("127.0.0.1", port) || ::listen(listen_fd, SOMAXCONN) != 0) return 1;
  return server.listen_after_bind() ? 0 : 1;
}
