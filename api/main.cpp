// nudge-api: the REST API. Usage: nudge-api [--config FILE] | nudge-api token ...

#include <malloc.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "change_poller.hpp"
#include "errors.hpp"
#include "exposure.hpp"
#include "gate.hpp"
#include "http_server.hpp"
#include "nudge/address_guard.hpp"
#include "nudge/config.hpp"
#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/migrations.hpp"
#include "nudge/pool.hpp"
#include "nudge/shutdown.hpp"
#include "nudge/startup.hpp"
#include "nudge/version.hpp"
#include "router.hpp"
#include "routes.hpp"
#include "server_metrics.hpp"
#include "statements.hpp"
#include "stream_hub.hpp"
#include "tls_context.hpp"
#include "token_cli.hpp"
#include "token_watch.hpp"
#include "webhook_target.hpp"

namespace {

// How often a running API looks for a breaking migration that landed since it started.
constexpr auto kSchemaCheckEvery = std::chrono::seconds(5);

// A breaking migration this binary does not know, landed while it runs; nothing when none did or
// the database cannot be asked now (/readyz says so).
std::optional<std::string> landed_breaking_migration(nudge::ConnectionPool& pool) {
  try {
    auto lease = pool.acquire(std::chrono::seconds(1));
    return nudge::newer_breaking_migration(*lease);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

constexpr const char* kUsage =
    "usage: nudge-api [--config FILE] [--version]\n"
    "       nudge-api token create|list|revoke ...   (nudge-api token --help)\n"
    "  --config FILE    settings file (TOML); NUDGE_<SECTION>_<KEY> variables override it\n"
    "  --version        print the version and exit, reading no settings\n";

// The connection limit is kept below the open-file limit, leaving room for the process's other
// files: the database pool, the notifier, logs, the listening and event sockets.
std::size_t connection_limit(const nudge::Config& config) {
  const std::size_t open_files = nudge::raise_open_file_limit();
  const std::size_t other_files = static_cast<std::size_t>(config.database.pool_size) + 128;
  const auto wanted = static_cast<std::size_t>(config.api.max_connections);
  const std::size_t possible = open_files > other_files + 1 ? open_files - other_files : 1;
  if (wanted <= possible) return wanted;
  nudge::log::warn(
      "api.max_connections lowered to fit the open-file limit",
      {{"max_connections", wanted}, {"lowered_to", possible}, {"open_files", open_files}});
  return possible;
}

nudge::api::HttpServer::Settings server_settings(const nudge::Config& config, SSL_CTX* tls) {
  nudge::api::HttpServer::Settings s;
  s.threads = config.api.threads;
  s.max_connections = connection_limit(config);
  s.keep_alive = std::chrono::seconds(config.api.keep_alive_seconds);
  s.request_timeout = std::chrono::milliseconds(config.api.request_timeout_ms);
  s.max_body_bytes = static_cast<std::size_t>(config.api.max_body_bytes);
  s.overloaded_body = nudge::api::error_json("unavailable", "too many open connections; try again");
  s.head_too_large_body = nudge::api::error_json(
      "header_too_large", "the request line and headers are over 64 KiB; the connection is closed");
  s.head_malformed_body = nudge::api::error_json(
      "bad_request",
      "the request head could not be read: each line ends in CRLF, and each header line is a "
      "name, a colon and a value; the connection is closed");
  s.timed_out_body = nudge::api::error_json(
      "request_timeout",
      "the request did not arrive in time (request_timeout_ms, and a minimum rate for its body); "
      "the connection is closed");
  s.stopping_body = nudge::api::error_json(
      "unavailable", "the server is stopping and the request had not arrived in whole; try again");
  s.tls = tls;
  return s;
}

nudge::api::Gate::Settings gate_settings(const nudge::Config& config) {
  nudge::api::Gate::Settings s;
  s.auth = config.api.auth == "token";
  s.token_cache = std::chrono::seconds(config.api.token_cache_seconds);
  s.rate_per_token = config.api.rate_per_token;
  s.burst = config.api.burst;
  s.auth_failures_per_minute = config.api.auth_failures_per_minute;
  return s;
}

std::optional<std::optional<std::string>> parse_args(int argc, char** argv) {
  std::optional<std::string> config_file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_file = argv[++i];
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--version") {
      std::puts(nudge::version_line("nudge-api").c_str());
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
  if (argc > 1 && std::string(argv[1]) == "token")
    return nudge::api::token_command(argc - 2, argv + 2);
  // `nudge-api --config FILE token ...`, as the server is started: the same as `token ...
  // --config FILE`.
  if (argc > 3 && std::string(argv[1]) == "--config" && std::string(argv[3]) == "token") {
    std::vector<char*> args(argv + 4, argv + argc);
    args.push_back(argv[1]);
    args.push_back(argv[2]);
    return nudge::api::token_command(static_cast<int>(args.size()), args.data());
  }
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
  // HTTPS: the certificate and key are read before anything else starts.
  std::optional<nudge::api::TlsContext> tls;
  if (!config.api.tls_cert.empty() || !config.api.tls_key.empty()) {
    try {
      tls.emplace(config.api.tls_cert, config.api.tls_key);
    } catch (const nudge::api::TlsError& e) {
      std::fprintf(stderr, "nudge-api: configuration error: %s\n", e.what());
      return 2;
    }
  }
  if (const auto problem = nudge::api::exposure_problem(config.api)) {
    std::fprintf(stderr, "nudge-api: %s\n", problem->c_str());
    return 2;
  }
  nudge::log::set_level(nudge::log::parse_level(config.log.level));
  const std::string id = nudge::make_process_id();
  nudge::log::set_context({{"program", "nudge-api"}, {"api", id}});
  if (config.api.auth == "off") {
    nudge::log::warn("auth is off: every route is open to anyone who can reach the address",
                     {{"host", config.api.host}});
  }
  nudge::install_shutdown_handlers();
  if (const int code = nudge::migrate_at_startup(config, id + "/migrate"); code != 0) return code;

  nudge::api::set_statement_timeout_ms(config.database.statement_timeout_ms);
  nudge::ConnectionPool pool(
      config.database.url, config.database.pool_size, id + "/api",
      [&database = config.database,
       names = nudge::api::webhook_secret_names(config.secrets)](pqxx::connection& c) {
        nudge::api::set_up_request_connection(c, database.statement_timeout_ms,
                                              database.lock_timeout_ms, names);
      });
  nudge::api::Notifier notifier(config.database.url, id + "/notify");
  // Before the server: streams the server holds refer to it until they close.
  nudge::api::StreamHub hub({static_cast<std::size_t>(config.api.max_streams),
                             static_cast<std::size_t>(config.api.max_streams_per_token),
                             static_cast<std::size_t>(config.api.stream_buffer_bytes),
                             static_cast<std::size_t>(std::max(1, config.api.threads / 2))});
  nudge::api::Gate gate(gate_settings(config), pool);
  std::optional<nudge::api::TokenWatch> token_watch;
  if (config.api.auth == "token")
    token_watch.emplace(config.database.url, id + "/tokens", gate.tokens(), hub,
                        std::chrono::seconds(config.api.token_cache_seconds));
  nudge::api::HttpServer server(server_settings(config, tls ? tls->get() : nullptr));
  nudge::metrics::Registry registry;
  nudge::api::RequestMetrics request_metrics(registry);
  nudge::api::add_server_metrics(registry, pool, server);
  nudge::api::Router router(server.routes(), gate, &request_metrics,
                            static_cast<std::size_t>(config.api.max_body_bytes),
                            config.api.threads);
  const nudge::AddressGuard guard(config.webhook.allow_private);
  nudge::api::EventCombiner events(pool,
                                   static_cast<std::size_t>(config.database.event_transactions),
                                   config.database.lock_timeout_ms, registry);
  nudge::api::add_routes(router, pool, notifier, config.secrets, guard, registry, hub,
                         config.misfire, events);
  router.finish();
  const int half_the_threads = std::max(1, config.api.threads / 2);
  nudge::api::KeyedSlots uploads(half_the_threads, half_the_threads);
  server.set_body_gate([&router, &uploads](const httplib::Request& req, httplib::Response& res) {
    return router.admits_body(req, res, uploads);
  });
  if (const auto problem = server.bind(config.api.host, config.api.port)) {
    nudge::log::error("cannot listen",
                      {{"host", config.api.host}, {"port", config.api.port}, {"error", *problem}});
    return 1;
  }
  nudge::log::info("listening", {{"host", config.api.host},
                                 {"port", config.api.port},
                                 {"https", tls.has_value()},
                                 {"threads", config.api.threads},
                                 {"auth", config.api.auth},
                                 {"max_connections", server.max_connections()},
                                 {"pool_size", config.database.pool_size},
                                 {"event_transactions", events.transactions()}});
  hub.set_wake([&server] { server.wake_streams(); });
  // After bind (the hub wakes the server's loop) and stopped before the server goes.
  nudge::api::ChangePoller poller(config.database.url, id + "/stream", hub,
                                  std::chrono::seconds(config.api.stream_heartbeat_seconds));
  std::thread serving([&server] {
    server.serve();
    nudge::request_shutdown();  // also when serving failed, so that main does not wait forever
  });

  // SIGTERM/SIGINT: stop accepting, let requests in flight finish, exit 0. A breaking migration
  // landing meanwhile stops it the same way with status 2, as it would have refused to start:
  // its statements may no longer mean what the schema does (a worker stops alike).
  int status = 0;
  auto next_schema_check = std::chrono::steady_clock::now() + kSchemaCheckEvery;
  pollfd pfd{nudge::shutdown_fd(), POLLIN, 0};
  while (!nudge::shutdown_requested()) {
    ::poll(&pfd, 1, 1000);
    if (std::chrono::steady_clock::now() < next_schema_check) continue;
    next_schema_check = std::chrono::steady_clock::now() + kSchemaCheckEvery;
    if (const auto problem = landed_breaking_migration(pool)) {
      nudge::log::error(
          "a migration this binary cannot work with has landed: the API stops (start the "
          "upgraded one)",
          {{"error", *problem}});
      status = 2;
      break;
    }
  }
  nudge::log::info("stopping");
  server.stop();
  serving.join();
  nudge::log::info("stopped");
  return status;
}
