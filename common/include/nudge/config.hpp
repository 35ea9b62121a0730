#pragma once
// Settings for both programs: built-in defaults, then a TOML file, then NUDGE_<SECTION>_<KEY>
// environment variables. Anything unknown or out of range is a startup error naming the key.

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace nudge {

struct DatabaseConfig {
  std::string url = "postgresql://postgres@127.0.0.1:55433/nudge";
  int pool_size = 16;  // connections the API keeps open (one per request thread)
  // Longest statement of one API request (0: no limit): a request stuck behind a lock (a long
  // migration, an ALTER TABLE) is answered 503 instead of holding its thread without end.
  int statement_timeout_ms = 10000;
  // Longest wait of one API request for each row or table another transaction holds (0: up to
  // statement_timeout_ms): an application's open transaction held 40 request threads 10 s each.
  int lock_timeout_ms = 2000;
  // Transactions recording single events (POST /v1/events) at once; events posted while they
  // are busy wait and are recorded together, up to 64 in the next free one (api/event_combiner).
  // 0: as many as this host has CPUs (at least 2).
  int event_transactions = 0;
};

struct WorkerConfig {
  int batch_size = 1000;          // rows claimed per round trip
  int concurrency = 2;            // claim loops (each with its own connection) per process
  int lease_seconds = 30;         // how long a claim is held before another worker may take it
  int idle_cap_seconds = 60;      // longest sleep when nothing is due (a safety net, not a poll)
  int reconnect_max_ms = 5000;    // cap of the reconnect backoff after the database goes away
  int deliveries_in_flight = 64;  // deliveries one claim loop runs at once
  int stop_grace_ms = 3000;       // at a stop, how long deliveries under way get to end
  int metrics_port = 0;           // GET /metrics, /livez and /readyz on this port; 0: no listener
  std::string metrics_address = "127.0.0.1";  // where that listener listens
};

struct RetryConfig {
  int max_attempts = 3;       // default attempts per occurrence (a reminder may set its own)
  int base_delay_ms = 1000;   // backoff before attempt n+1: random in [0, min(max, base * 2^(n-1))]
  int max_delay_ms = 300000;  // cap of that backoff
};

struct MisfireConfig {
  int threshold_seconds = 60;  // an occurrence later than this counts as missed (policy skip)
  int fire_all_cap = 100;      // most missed occurrences one catch-up fires (policy fire_all)
};

// A circuit breaker per webhook host, shared by all workers through the database.
struct BreakerConfig {
  int failures = 5;             // consecutive failed attempts to one host that open it; 0: off
  int open_seconds = 60;        // deliveries to an open host wait this long before one probe
  int max_open_seconds = 3600;  // each failed probe doubles the wait, up to this
};

struct WebhookConfig {
  std::string secret;             // HMAC-SHA256 key of the Nudge-Signature header; empty: unsigned
  int connect_timeout_ms = 2000;  // a target that does not accept the connection in time fails
  int timeout_ms = 10000;         // whole request, connect included
  // Networks a webhook may reach although they are private (the SSRF guard refuses them
  // otherwise; nudge/address_guard.hpp), e.g. 127.0.0.0/8 for a receiver on the same host.
  std::vector<std::string> allow_private;
};

struct EmailConfig {
  std::string smtp_url =
      "smtp://127.0.0.1:25";             // relay; smtp:// or smtps://, may hold user:password
  std::string from = "nudge@localhost";  // envelope sender and From header
  int timeout_ms = 30000;                // whole SMTP conversation
  // Connections to the relay one worker process keeps at most (split among its claim loops, at
  // least one each): relays limit connections per client, and the workers of one host share it.
  int connections = 4;
  // PEM certificates to trust for the relay's TLS instead of the system's (a private CA or a
  // self-signed relay); empty: the system's.
  std::string ca_file;
};

struct HistoryConfig {
  int retention_days = 30;            // executions and finished reminders older than this go
  int prune_interval_seconds = 3600;  // how often one worker prunes
};

struct ApiConfig {
  std::string host = "127.0.0.1";     // address nudge-api listens on
  int port = 8080;                    // TCP port of nudge-api
  int threads = 16;                   // HTTP worker threads (requests served at once)
  int max_body_bytes = 1048576;       // larger request bodies are refused with 413
  int request_timeout_ms = 10000;     // read/write timeout of one request
  int max_connections = 10000;        // open connections; a client past them gets a 503 at once
  int keep_alive_seconds = 5;         // an idle keep-alive connection is closed after this
  std::string tls_cert;               // PEM certificate chain; with tls_key: HTTPS only
  std::string tls_key;                // PEM private key of tls_cert
  std::string auth = "token";         // token: routes need a bearer token | off: loopback only
  int rate_per_token = 100;           // requests a second per token, on average; 0: no limit
  int burst = 200;                    // requests a token may send at once
  int auth_failures_per_minute = 60;  // a peer's failed authentications a minute; 0: no limit
  int token_cache_seconds = 30;       // how long a verified token is trusted without a lookup
  int max_streams = 1000;             // open GET /v1/stream clients; past them a 503
  int max_streams_per_token = 16;     // of them opened with one token; past them a 429
  int stream_buffer_bytes = 8388608;  // queued for one stream client before it is lagged
  int stream_heartbeat_seconds = 15;  // a ": ping" comment on every stream this often
};

struct LogConfig {
  std::string level = "info";  // debug | info | warn | error
};

// [secrets] NAME = "value": values the worker fills into webhook headers ({{secret.NAME}}) or
// that stand for a whole webhook URL, never stored or shown. Names: 1 to 64 of a-z, 0-9 and _
// (NUDGE_SECRETS_<NAME> in any case). [secret_hosts] NAME = ["api.example.com", "*.example.com"]
// (NUDGE_SECRET_HOSTS_<NAME>, comma-separated): the only hosts a header may send it to, so that
// whoever may create a reminder cannot send it to a host of their own (explore29a #1).
struct Secret {
  std::string value;
  std::vector<std::string> hosts;  // lower case; "*.example.com": any name under example.com
  bool operator==(const Secret&) const = default;
};
using Secrets = std::map<std::string, Secret>;

struct Config {
  DatabaseConfig database;
  WorkerConfig worker;
  RetryConfig retry;
  MisfireConfig misfire;
  BreakerConfig breaker;
  WebhookConfig webhook;
  EmailConfig email;
  HistoryConfig history;
  ApiConfig api;
  LogConfig log;
  Secrets secrets;
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
