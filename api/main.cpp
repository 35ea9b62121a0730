// nudge-api: the REST API. Usage: nudge-api [--config FILE]

#include <httplib.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "nudge/config.hpp"
#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/pool.hpp"
#include "nudge/shutdown.hpp"
#include "nudge/startup.hpp"
#include "router.hpp"
#include "routes.hpp"
#include "statements.hpp"

namespace {

constexpr const char* kUsage =
    "usage: nudge-api [--config FILE]\n"
    "  --config FILE    settings file (TOML); NUDGE_<SECTION>_<KEY> variables override it\n";

std::optional<std::optional<std::string>> parse_args(int argc, char** argv) {
  std::optional<std::string> config_file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_file = argv[++i];
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "nudge-api: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return std::nullopt;
    }
  }
  return config_file;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives each busy thread its own malloc arena; with 16 request threads parsing large
  // batch bodies that doubled peak RSS (58 -> 33 MiB under the benchmark) for no speed.
  ::mallopt(M_ARENA_MAX, 2);
  const auto config_file = parse_args(argc, argv);
  if (!config_file) return 2;
  nudge::Config config;
  try {
    config = nudge::load_config(*config_file, nudge::process_environment());
  } catch (const nudge::ConfigError& e) {
    std::fprintf(stderr, "nudge-api: configuration error: %s\n", e.what());
    return 2;
  }
  nudge::log::set_level(nudge::log::parse_level(config.log.level));
  const std::string id = nudge::make_process_id();
  nudge::log::set_context({{"program", "nudge-api"}, {"api", id}});
  nudge::install_shutdown_handlers();
  if (const int code = nudge::migrate_at_startup(config, id + "/migrate"); code != 0) return code;

  nudge::ConnectionPool pool(config.database.url, config.database.pool_size, id + "/api",
                             &nudge::api::set_up_connection);
  nudge::api::Notifier notifier(config.database.url, id + "/notify");
  httplib::Server server;
  const int threads = config.api.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_payload_max_length(static_cast<std::size_t>(config.api.max_body_bytes));
  const auto timeout_s = config.api.request_timeout_ms / 1000;
  const auto timeout_us = (config.api.request_timeout_ms % 1000) * 1000;
  server.set_read_timeout(timeout_s, timeout_us);
  server.set_write_timeout(timeout_s, timeout_us);
  nudge::api::Router router(server);
  nudge::api::add_routes(router, pool, notifier, config.secrets);
  router.finish();

  // Debian's prebuilt cpp-httplib listens with a backlog of 5, which drops connections when
  // many clients connect at once; remember the socket and listen again with a real backlog.
  int listen_fd = -1;
  // Accepted sockets inherit TCP_NODELAY: without it a response written in two parts waits
  // for the client's delayed ACK (40 ms per request).
  server.set_socket_options([&listen_fd](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    listen_fd = fd;
  });
  if (!server.bind_to_port(config.api.host.c_str(), config.api.port) ||
      ::listen(listen_fd, SOMAXCONN) != 0) {
    nudge::log::error("cannot listen", {{"host", config.api.host}, {"port", config.api.port}});
    return 1;
  }
  nudge::log::info("listening", {{"host", config.api.host},
                                 {"port", config.api.port},
                                 {"threads", threads},
                                 {"pool_size", config.database.pool_size}});
  std::thread serving([&server] { server.listen_after_bind(); });

  // SIGTERM/SIGINT: stop accepting, let requests in flight finish, exit 0.
  pollfd pfd{nudge::shutdown_fd(), POLLIN, 0};
  while (!nudge::shutdown_requested()) ::poll(&pfd, 1, 1000);
  nudge::log::info("stopping");
  server.stop();
  serving.join();
  nudge::log::info("stopped");
  return 0;
}
