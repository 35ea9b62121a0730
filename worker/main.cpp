// nudge-worker: fires due reminders. Usage: nudge-worker [--config FILE] [--migrate-only]

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "nudge/config.hpp"
#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/migrations.hpp"
#include "nudge/shutdown.hpp"
#include "nudge/startup.hpp"
#include "nudge/version.hpp"
#include "worker.hpp"

namespace {

constexpr const char* kUsage =
    "usage: nudge-worker [--config FILE] [--migrate-only] [--version]\n"
    "  --config FILE    settings file (TOML); NUDGE_<SECTION>_<KEY> variables override it\n"
    "  --migrate-only   apply pending database migrations and exit (0; 1 when the database\n"
    "                   stays unreachable for 5 s; 2 when it is newer than this binary)\n"
    "  --version        print the version and exit, reading no settings\n";

struct Args {
  std::optional<std::string> config_file;
  bool migrate_only = false;
};

std::optional<Args> parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      args.config_file = argv[++i];
    } else if (a == "--migrate-only") {
      args.migrate_only = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--version") {
      std::puts(nudge::version_line("nudge-worker").c_str());
      std::exit(0);
    } else {
      std::fprintf(stderr, "nudge-worker: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return std::nullopt;
    }
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  const auto args = parse_args(argc, argv);
  if (!args) return 2;
  nudge::Config config;
  try {
    config = nudge::load_config(args->config_file, nudge::process_environment());
  } catch (const nudge::ConfigError& e) {
    std::fprintf(stderr, "nudge-worker: configuration error: %s\n", e.what());
    return 2;
  }
  nudge::log::set_level(nudge::log::parse_level(config.log.level));
  const std::string worker_id = nudge::make_process_id();
  nudge::log::set_context({{"program", "nudge-worker"}, {"worker", worker_id}});
  nudge::install_shutdown_handlers();
  // A one-shot command answers soon (a deploy step waits on it); a worker starting as a service
  // waits longer for a database that is still starting.
  const auto wait = args->migrate_only ? std::chrono::seconds(5) : std::chrono::seconds(60);
  if (const int code = nudge::migrate_at_startup(config, worker_id + "/migrate", wait); code != 0)
    return code;
  if (args->migrate_only) return 0;
  return nudge::run_worker(config, worker_id);
}
