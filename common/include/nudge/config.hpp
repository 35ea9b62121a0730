#pragma once
// Settings for both programs: built-in defaults, then a TOML file, then NUDGE_<SECTION>_<KEY>
// environment variables. Anything unknown or out of range is a startup error naming the key.

#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace nudge {

struct DatabaseConfig {
  std::string url = "postgresql://postgres@127.0.0.1:55433/nudge";
  int pool_size = 16;  // connections the API keeps open (one per request thread)
};

struct WorkerConfig {
  int batch_size = 1000;        // rows claimed per round trip
  int concurrency = 2;          // claim loops (each with its own connection) per process
  int lease_seconds = 30;       // how long a claim is held before another worker may take it
  int idle_cap_seconds = 60;    // longest sleep when nothing is due (a safety net, not a poll)
  int reconnect_max_ms = 5000;  // cap of the reconnect backoff after the database goes away
};

struct RetryConfig {
  int max_attempts = 3;  // claims of one occurrence before it counts as failed
};

struct HistoryConfig {
  int retention_days = 30;            // executions and finished reminders older than this go
  int prune_interval_seconds = 3600;  // how often one worker prunes
};

struct ApiConfig {
  std::string host = "127.0.0.1";  // address nudge-api listens on
  int port = 8080;                 // TCP port of nudge-api
  int threads = 16;                // HTTP worker threads (requests served at once)
  int max_body_bytes = 1048576;    // larger request bodies are refused with 413
  int request_timeout_ms = 10000;  // read/write timeout of one request
};

struct LogConfig {
  std::string level = "info";  // debug | info | warn | error
};

struct Config {
  DatabaseConfig database;
  WorkerConfig worker;
  RetryConfig retry;
  HistoryConfig history;
  ApiConfig api;
  LogConfig log;
};

// Thrown for a bad file, key or value; what() names the key (e.g. "worker.batch_size: ...").
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Environment = std::map<std::string, std::string>;

// The process environment, as a map (only NUDGE_* variables are kept).
Environment process_environment();

// Loads defaults, then `file` if given, then `env` overrides. Throws ConfigError.
Config load_config(const std::optional<std::string>& file, const Environment& env);

// Parses TOML text instead of a file (for tests); `origin` names it in messages.
Config load_config_text(const std::string& toml, const std::string& origin, const Environment& env);

}  // namespace nudge
