// Configuration loading: defaults, the shipped file, file values, environment overrides, and
// every way a setting can be wrong. No database needed.

#include "nudge/config.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace nudge {
namespace {

// Every field, so whole configs compare (and print) at once. A new setting goes here too.
auto Fields(const Config& c) {
  return std::tie(c.database.url, c.database.pool_size, c.database.statement_timeout_ms,
                  c.database.lock_timeout_ms, c.database.event_transactions, c.worker.batch_size,
                  c.worker.concurrency, c.worker.lease_seconds, c.worker.idle_cap_seconds,
                  c.worker.reconnect_max_ms, c.worker.deliveries_in_flight, c.worker.stop_grace_ms,
                  c.worker.metrics_port, c.worker.metrics_address, c.retry.max_attempts,
                  c.retry.base_delay_ms, c.retry.max_delay_ms, c.misfire.threshold_seconds,
                  c.misfire.fire_all_cap, c.breaker.failures, c.breaker.open_seconds,
                  c.breaker.max_open_seconds, c.webhook.secret, c.webhook.connect_timeout_ms,
                  c.webhook.timeout_ms, c.webhook.allow_private, c.email.smtp_url, c.email.from,
                  c.email.timeout_ms, c.email.connections, c.email.ca_file,
                  c.history.retention_days, c.history.prune_interval_seconds, c.api.host,
                  c.api.port, c.api.threads, c.api.max_body_bytes, c.api.request_timeout_ms,
                  c.api.max_connections, c.api.keep_alive_seconds, c.api.tls_cert, c.api.tls_key,
                  c.api.max_streams, c.api.max_streams_per_token, c.api.stream_buffer_bytes,
                  c.api.stream_heartbeat_seconds, c.api.auth, c.api.rate_per_token, c.api.burst,
                  c.api.token_cache_seconds, c.log.level, c.secrets);
}

const Config kDefaults{};

std::string ShippedConfigPath() {
  return std::string(NUDGE_SOURCE_DIR) + "/config/nudge.toml";
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Config FromText(const std::string& toml, const Environment& env = {}) {
  return load_config_text(toml, "test.toml", env);
}

// The message of the ConfigError thrown by `load`; a test failure if it throws none.
template <typename Load>
std::string ErrorOf(Load load) {
  try {
    load();
  } catch (const ConfigError& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

// One valid, non-default value for each setting, in every form it can be given.
struct SettingCase {
  std::string section;
  std::string key;
  std::string variable;  // its environment variable
  std::string text;      // the value as variable text
  std::string toml;      // the same value as TOML
  void (*apply)(Config&);
};

const std::vector<SettingCase>& EverySetting() {
  static const std::vector<SettingCase> cases = {
      {"database", "url", "NUDGE_DATABASE_URL", "host=db dbname=nudge", "\"host=db dbname=nudge\"",
       [](Config& c) { c.database.url = "host=db dbname=nudge"; }},
      {"database", "pool_size", "NUDGE_DATABASE_POOL_SIZE", "17", "17",
       [](Config& c) { c.database.pool_size = 17; }},
      {"database", "statement_timeout_ms", "NUDGE_DATABASE_STATEMENT_TIMEOUT_MS", "2500", "2500",
       [](Config& c) { c.database.statement_timeout_ms = 2500; }},
      {"database", "lock_timeout_ms", "NUDGE_DATABASE_LOCK_TIMEOUT_MS", "750", "750",
       [](Config& c) { c.database.lock_timeout_ms = 750; }},
      {"database", "event_transactions", "NUDGE_DATABASE_EVENT_TRANSACTIONS", "3", "3",
       [](Config& c) { c.database.event_transactions = 3; }},
      {"worker", "batch_size", "NUDGE_WORKER_BATCH_SIZE", "250", "250",
       [](Config& c) { c.worker.batch_size = 250; }},
      {"worker", "concurrency", "NUDGE_WORKER_CONCURRENCY", "4", "4",
       [](Config& c) { c.worker.concurrency = 4; }},
      {"worker", "lease_seconds", "NUDGE_WORKER_LEASE_SECONDS", "45", "45",
       [](Config& c) { c.worker.lease_seconds = 45; }},
      {"worker", "idle_cap_seconds", "NUDGE_WORKER_IDLE_CAP_SECONDS", "7", "7",
       [](Config& c) { c.worker.idle_cap_seconds = 7; }},
      {"worker", "reconnect_max_ms", "NUDGE_WORKER_RECONNECT_MAX_MS", "2500", "2500",
       [](Config& c) { c.worker.reconnect_max_ms = 2500; }},
      {"worker", "deliveries_in_flight", "NUDGE_WORKER_DELIVERIES_IN_FLIGHT", "8", "8",
       [](Config& c) { c.worker.deliveries_in_flight = 8; }},
      {"worker", "stop_grace_ms", "NUDGE_WORKER_STOP_GRACE_MS", "12000", "12000",
       [](Config& c) { c.worker.stop_grace_ms = 12000; }},
      {"worker", "metrics_port", "NUDGE_WORKER_METRICS_PORT", "9464", "9464",
       [](Config& c) { c.worker.metrics_port = 9464; }},
      {"worker", "metrics_address", "NUDGE_WORKER_METRICS_ADDRESS", "0.0.0.0", "\"0.0.0.0\"",
       [](Config& c) { c.worker.metrics_address = "0.0.0.0"; }},
      {"retry", "max_attempts", "NUDGE_RETRY_MAX_ATTEMPTS", "9", "9",
       [](Config& c) { c.retry.max_attempts = 9; }},
      {"retry", "base_delay_ms", "NUDGE_RETRY_BASE_DELAY_MS", "250", "250",
       [](Config& c) { c.retry.base_delay_ms = 250; }},
      {"retry", "max_delay_ms", "NUDGE_RETRY_MAX_DELAY_MS", "60000", "60000",
       [](Config& c) { c.retry.max_delay_ms = 60000; }},
      {"misfire", "threshold_seconds", "NUDGE_MISFIRE_THRESHOLD_SECONDS", "120", "120",
       [](Config& c) { c.misfire.threshold_seconds = 120; }},
      {"misfire", "fire_all_cap", "NUDGE_MISFIRE_FIRE_ALL_CAP", "12", "12",
       [](Config& c) { c.misfire.fire_all_cap = 12; }},
      {"breaker", "failures", "NUDGE_BREAKER_FAILURES", "0", "0",
       [](Config& c) { c.breaker.failures = 0; }},
      {"breaker", "open_seconds", "NUDGE_BREAKER_OPEN_SECONDS", "15", "15",
       [](Config& c) { c.breaker.open_seconds = 15; }},
      {"breaker", "max_open_seconds", "NUDGE_BREAKER_MAX_OPEN_SECONDS", "900", "900",
       [](Config& c) { c.breaker.max_open_seconds = 900; }},
      {"webhook", "secret", "NUDGE_WEBHOOK_SECRET", "whsec_0123456789abcdef",
       "\"whsec_0123456789abcdef\"",
       [](Config& c) { c.webhook.secret = "whsec_0123456789abcdef"; }},
      {"webhook", "connect_timeout_ms", "NUDGE_WEBHOOK_CONNECT_TIMEOUT_MS", "500", "500",
       [](Config& c) { c.webhook.connect_timeout_ms = 500; }},
      {"webhook", "timeout_ms", "NUDGE_WEBHOOK_TIMEOUT_MS", "1500", "1500",
       [](Config& c) { c.webhook.timeout_ms = 1500; }},
      {"webhook", "allow_private", "NUDGE_WEBHOOK_ALLOW_PRIVATE", "127.0.0.0/8, ::1/128",
       "[\"127.0.0.0/8\", \"::1/128\"]",
       [](Config& c) {
         c.webhook.allow_private = {"127.0.0.0/8", "::1/128"};
       }},
      {"email", "smtp_url", "NUDGE_EMAIL_SMTP_URL", "smtp://127.0.0.1:2525",
       "\"smtp://127.0.0.1:2525\"", [](Config& c) { c.email.smtp_url = "smtp://127.0.0.1:2525"; }},
      {"email", "from", "NUDGE_EMAIL_FROM", "nudge@example.com", "\"nudge@example.com\"",
       [](Config& c) { c.email.from = "nudge@example.com"; }},
      {"email", "timeout_ms", "NUDGE_EMAIL_TIMEOUT_MS", "5000", "5000",
       [](Config& c) { c.email.timeout_ms = 5000; }},
      {"email", "connections", "NUDGE_EMAIL_CONNECTIONS", "3", "3",
       [](Config& c) { c.email.connections = 3; }},
      // Any readable file passes the start's check (it is read as PEM at each conversation).
      {"email", "ca_file", "NUDGE_EMAIL_CA_FILE", "/etc/passwd", "\"/etc/passwd\"",
       [](Config& c) { c.email.ca_file = "/etc/passwd"; }},
      {"history", "retention_days", "NUDGE_HISTORY_RETENTION_DAYS", "90", "90",
       [](Config& c) { c.history.retention_days = 90; }},
      {"history", "prune_interval_seconds", "NUDGE_HISTORY_PRUNE_INTERVAL_SECONDS", "600", "600",
       [](Config& c) { c.history.prune_interval_seconds = 600; }},
      {"api", "host", "NUDGE_API_HOST", "0.0.0.0", "\"0.0.0.0\"",
       [](Config& c) { c.api.host = "0.0.0.0"; }},
      {"api", "port", "NUDGE_API_PORT", "9090", "9090", [](Config& c) { c.api.port = 9090; }},
      {"api", "threads", "NUDGE_API_THREADS", "8", "8", [](Config& c) { c.api.threads = 8; }},
      {"api", "max_body_bytes", "NUDGE_API_MAX_BODY_BYTES", "4096", "4096",
       [](Config& c) { c.api.max_body_bytes = 4096; }},
      {"api", "request_timeout_ms", "NUDGE_API_REQUEST_TIMEOUT_MS", "2500", "2500",
       [](Config& c) { c.api.request_timeout_ms = 2500; }},
      {"api", "max_connections", "NUDGE_API_MAX_CONNECTIONS", "500", "500",
       [](Config& c) { c.api.max_connections = 500; }},
      {"api", "keep_alive_seconds", "NUDGE_API_KEEP_ALIVE_SECONDS", "30", "30",
       [](Config& c) { c.api.keep_alive_seconds = 30; }},
      {"api", "tls_cert", "NUDGE_API_TLS_CERT", "/etc/nudge/cert.pem", "\"/etc/nudge/cert.pem\"",
       [](Config& c) { c.api.tls_cert = "/etc/nudge/cert.pem"; }},
      {"api", "tls_key", "NUDGE_API_TLS_KEY", "/etc/nudge/key.pem", "\"/etc/nudge/key.pem\"",
       [](Config& c) { c.api.tls_key = "/etc/nudge/key.pem"; }},
      {"api", "max_streams", "NUDGE_API_MAX_STREAMS", "20", "20",
       [](Config& c) { c.api.max_streams = 20; }},
      {"api", "max_streams_per_token", "NUDGE_API_MAX_STREAMS_PER_TOKEN", "4", "4",
       [](Config& c) { c.api.max_streams_per_token = 4; }},
      {"api", "stream_buffer_bytes", "NUDGE_API_STREAM_BUFFER_BYTES", "65536", "65536",
       [](Config& c) { c.api.stream_buffer_bytes = 65536; }},
      {"api", "stream_heartbeat_seconds", "NUDGE_API_STREAM_HEARTBEAT_SECONDS", "2", "2",
       [](Config& c) { c.api.stream_heartbeat_seconds = 2; }},
      {"api", "auth", "NUDGE_API_AUTH", "off", "\"off\"", [](Config& c) { c.api.auth = "off"; }},
      {"api", "rate_per_token", "NUDGE_API_RATE_PER_TOKEN", "0", "0",
       [](Config& c) { c.api.rate_per_token = 0; }},
      {"api", "burst", "NUDGE_API_BURST", "5", "5", [](Config& c) { c.api.burst = 5; }},
      {"api", "token_cache_seconds", "NUDGE_API_TOKEN_CACHE_SECONDS", "2", "2",
       [](Config& c) { c.api.token_cache_seconds = 2; }},
      {"log", "level", "NUDGE_LOG_LEVEL", "debug", "\"debug\"",
       [](Config& c) { c.log.level = "debug"; }},
  };
  return cases;
}

// The documented inclusive range of every integer setting.
struct Range {
  std::string section;
  std::string key;
  long long min;
  long long max;
};

const std::vector<Range>& IntegerRanges() {
  static const std::vector<Range> ranges = {
      {"database", "pool_size", 1, 256},
      {"database", "statement_timeout_ms", 0, 3600000},
      {"database", "lock_timeout_ms", 0, 3600000},
      {"database", "event_transactions", 0, 256},
      {"worker", "batch_size", 1, 10000},
      {"worker", "concurrency", 1, 64},
      {"worker", "lease_seconds", 5, 3600},
      {"worker", "idle_cap_seconds", 1, 3600},
      {"worker", "reconnect_max_ms", 100, 600000},
      {"worker", "deliveries_in_flight", 1, 10000},
      {"worker", "stop_grace_ms", 0, 600000},
      {"worker", "metrics_port", 0, 65535},
      {"retry", "max_attempts", 1, 100},
      {"retry", "base_delay_ms", 1, 86400000},
      {"retry", "max_delay_ms", 1, 604800000},
      {"misfire", "threshold_seconds", 1, 86400},
      {"misfire", "fire_all_cap", 1, 10000},
      {"breaker", "failures", 0, 1000},
      {"breaker", "open_seconds", 1, 86400},
      {"breaker", "max_open_seconds", 1, 604800},
      {"webhook", "connect_timeout_ms", 1, 600000},
      {"webhook", "timeout_ms", 1, 600000},
      {"email", "timeout_ms", 1, 600000},
      {"history", "retention_days", 1, 3650},
      {"history", "prune_interval_seconds", 10, 86400},
      {"api", "port", 1, 65535},
      {"api", "threads", 1, 256},
      {"api", "max_body_bytes", 1024, 67108864},
      {"api", "request_timeout_ms", 100, 600000},
      {"api", "max_connections", 1, 1000000},
      {"api", "keep_alive_seconds", 1, 3600},
      {"api", "max_streams", 1, 100000},
      {"api", "max_streams_per_token", 1, 100000},
      {"api", "stream_buffer_bytes", 4096, 1073741824},
      {"api", "stream_heartbeat_seconds", 1, 3600},
      {"api", "rate_per_token", 0, 1000000},
      {"api", "burst", 1, 1000000},
      {"api", "token_cache_seconds", 1, 3600},
  };
  return ranges;
}

std::string VariableOf(const std::string& section, const std::string& key) {
  std::string name = "NUDGE_" + section + "_" + key;
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

std::string OneSetting(const std::string& section, const std::string& key,
                       const std::string& value) {
  return "[" + section + "]\n" + key + " = " + value + "\n";
}

// ---- Defaults and the shipped file ----

TEST(ConfigDefaults, NoFileAndNoVariablesGiveTheStructDefaults) {
  EXPECT_EQ(Fields(load_config(std::nullopt, {})), Fields(kDefaults));
}

TEST(ConfigDefaults, EmptyFileGivesTheStructDefaults) {
  EXPECT_EQ(Fields(FromText("")), Fields(kDefaults));
}

TEST(ShippedConfig, LoadsWithoutErrorToExactlyTheStructDefaults) {
  EXPECT_EQ(Fields(load_config(ShippedConfigPath(), {})), Fields(kDefaults));
}

TEST(ShippedConfig, WritesOutEverySetting) {
  const std::string text = ReadText(ShippedConfigPath());
  ASSERT_FALSE(text.empty()) << ShippedConfigPath();
  for (const SettingCase& setting : EverySetting()) {
    const auto section_at = text.find("[" + setting.section + "]\n");
    ASSERT_NE(section_at, std::string::npos) << setting.section;
    const auto key_at = text.find("\n" + setting.key + " = ", section_at);
    const auto next_section_at = text.find("\n[", section_at + 1);
    EXPECT_LT(key_at, next_section_at) << setting.section << "." << setting.key;
  }
}

// ---- File values ----

TEST(ConfigFile, EverySettingIsReadFromTheFile) {
  std::string toml;
  Config expected;
  std::string section;
  for (const SettingCase& setting : EverySetting()) {
    if (setting.section != section) toml += "[" + (section = setting.section) + "]\n";
    toml += setting.key + " = " + setting.toml + "\n";
    setting.apply(expected);
  }
  EXPECT_EQ(Fields(FromText(toml)), Fields(expected));
}

TEST(ConfigFile, SettingsLeftOutKeepTheirDefaults) {
  Config expected;
  expected.worker.batch_size = 42;
  EXPECT_EQ(Fields(FromText("[worker]\nbatch_size = 42\n")), Fields(expected));
}

TEST(ConfigFile, InlineTablesAndDottedKeysAreAccepted) {
  Config expected;
  expected.worker.batch_size = 42;
  expected.retry.max_attempts = 5;
  EXPECT_EQ(Fields(FromText("worker = { batch_size = 42 }\nretry.max_attempts = 5\n")),
            Fields(expected));
}

TEST(ConfigFile, BothEndsOfEveryRangeAreAccepted) {
  // The breaker's cap must be at least its first wait: each end is tried with the other at the
  // end that admits it.
  const Environment widest = {{"NUDGE_BREAKER_OPEN_SECONDS", "1"},
                              {"NUDGE_BREAKER_MAX_OPEN_SECONDS", "604800"}};
  for (const Range& range : IntegerRanges()) {
    for (long long value : {range.min, range.max}) {
      SCOPED_TRACE(range.section + "." + range.key + " = " + std::to_string(value));
      const std::string variable = VariableOf(range.section, range.key);
      Environment env = widest;
      env.erase(variable);
      EXPECT_NO_THROW(FromText(OneSetting(range.section, range.key, std::to_string(value)), env));
      env[variable] = std::to_string(value);
      EXPECT_NO_THROW(FromText("", env));
    }
  }
}

TEST(ConfigFile, BreakerCapEqualToItsFirstWaitIsAccepted) {
  const Config config = FromText("[breaker]\nopen_seconds = 30\nmax_open_seconds = 30\n");
  EXPECT_EQ(config.breaker.max_open_seconds, 30);
}

TEST(ConfigEnvironment, AnEmptyListVariableClearsTheFilesList) {
  EXPECT_TRUE(FromText(OneSetting("webhook", "allow_private", "[\"10.0.0.0/8\"]"),
                       {{"NUDGE_WEBHOOK_ALLOW_PRIVATE", ""}})
                  .webhook.allow_private.empty());
}

TEST(ConfigFile, EveryLogLevelIsAccepted) {
  for (const std::string level : {"debug", "info", "warn", "error"}) {
    EXPECT_EQ(FromText(OneSetting("log", "level", "\"" + level + "\"")).log.level, level);
  }
}

TEST(ConfigFile, EveryDatabaseUrlFormIsAccepted) {
  for (const std::string url :
       {"postgresql://app:pw@db:5432/nudge", "postgres://db/nudge", "postgresql://",
        "host=db port=5432 dbname=nudge", "dbname=nudge", "postgresql://app:Q?M#k@db/nudge",
        "postgresql://db:5432/x@y", "postgresql://db/x?application_name=a@b"}) {
    EXPECT_EQ(FromText(OneSetting("database", "url", "\"" + url + "\"")).database.url, url);
  }
}

TEST(ConfigFile, MissingFileErrorNamesTheFile) {
  const std::string path = "/nonexistent/nudge-config-test/missing.toml";
  const std::string message = ErrorOf([&] { load_config(path, {}); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("No such file"), std::string::npos) << message;
}

TEST(ConfigFile, DirectoryInsteadOfFileErrorNamesIt) {
  const std::string path = std::string(NUDGE_SOURCE_DIR) + "/config";
  const std::string message = ErrorOf([&] { load_config(path, {}); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
}

TEST(ConfigFile, SyntaxErrorNamesTheFileAndLine) {
  const std::string message = ErrorOf(
      [] { load_config_text("[worker]\nbatch_size = 5\nlease_seconds = \n", "conf/my.toml", {}); });
  EXPECT_NE(message.find("conf/my.toml:3"), std::string::npos) << message;
  EXPECT_NE(message.find("invalid TOML"), std::string::npos) << message;
}

TEST(ConfigFile, BadValueInARealFileNamesPathAndLine) {
  const std::string path = ::testing::TempDir() + "nudge_config_test_bad_value.toml";
  std::ofstream(path) << "[worker]\nbatch_size = 500\nconcurrency = 0\n";
  const std::string message = ErrorOf([&] { load_config(path, {}); });
  std::remove(path.c_str());
  EXPECT_NE(message.find("worker.concurrency"), std::string::npos) << message;
  EXPECT_NE(message.find(path + ":3"), std::string::npos) << message;
}

// ---- Environment overrides ----

TEST(ConfigEnvironment, EverySettingCanBeOverridden) {
  for (const SettingCase& setting : EverySetting()) {
    SCOPED_TRACE(setting.variable);
    Config expected;
    setting.apply(expected);
    EXPECT_EQ(Fields(FromText("", {{setting.variable, setting.text}})), Fields(expected));
  }
}

TEST(ConfigEnvironment, VariablesOverrideTheFile) {
  const Config config = FromText("[worker]\nbatch_size = 100\nlease_seconds = 40\n",
                                 {{"NUDGE_WORKER_BATCH_SIZE", "200"}});
  EXPECT_EQ(config.worker.batch_size, 200);
  EXPECT_EQ(config.worker.lease_seconds, 40);  // from the file, not overridden
}

TEST(ConfigEnvironment, VariablesOverrideTheShippedFile) {
  const Config config = load_config(
      ShippedConfigPath(),
      {{"NUDGE_DATABASE_URL", "postgres://other/db"}, {"NUDGE_HISTORY_RETENTION_DAYS", "7"}});
  Config expected;
  expected.database.url = "postgres://other/db";
  expected.history.retention_days = 7;
  EXPECT_EQ(Fields(config), Fields(expected));
}

TEST(ConfigEnvironment, BadFileValueFailsEvenIfAVariableOverridesIt) {
  const std::string message = ErrorOf([] {
    FromText("[worker]\nbatch_size = 0\n", {{"NUDGE_WORKER_BATCH_SIZE", "10"}});
  });
  EXPECT_NE(message.find("worker.batch_size"), std::string::npos) << message;
  EXPECT_NE(message.find("test.toml:2"), std::string::npos) << message;
}

TEST(ConfigEnvironment, OtherNudgeAndUnrelatedVariablesAreIgnored) {
  const Environment env = {{"NUDGE_PG_PORT", "55433"},   {"NUDGE_TEST_ADMIN_URL", "not a url"},
                           {"NUDGE_TEST_TEMPLATE", "x"}, {"NUDGE_WORKERS", "3"},
                           {"NUDGE_PG_DIR", "/tmp/x"},   {"NUDGE_RUN_SMTP_PORT", "2525"},
                           {"NUDGE_BENCH_AUTH", "off"},  {"NUDGE_BUILD_DIR", "build"},
                           {"NUDGE_CONFIG", "x.toml"},   {"HOME", "/root"},
                           {"WORKER_BATCH_SIZE", "abc"}};
  EXPECT_EQ(Fields(FromText("", env)), Fields(kDefaults));
}

// ---- Rejected configurations ----

struct BadCase {
  std::string label;  // test name suffix
  std::string toml;
  Environment env;
  std::vector<std::string> expected;  // each must appear in the message
};

void PrintTo(const BadCase& bad, std::ostream* out) {
  *out << bad.label;
}

std::vector<BadCase> RangeCases() {
  std::vector<BadCase> cases;
  for (const Range& r : IntegerRanges()) {
    const std::string name = r.section + "." + r.key;
    const std::string variable = VariableOf(r.section, r.key);
    const std::string range = "between " + std::to_string(r.min) + " and " + std::to_string(r.max);
    for (const auto& [end, value] :
         {std::pair{"Below", r.min - 1}, std::pair{"Above", r.max + 1}}) {
      const std::string text = std::to_string(value);
      cases.push_back({"File_" + r.section + "_" + r.key + "_" + end,
                       OneSetting(r.section, r.key, text),
                       {},
                       {name, range, "got " + text}});
      cases.push_back({"Env_" + r.section + "_" + r.key + "_" + end,
                       "",
                       {{variable, text}},
                       {variable, "(" + name + ")", range}});
    }
  }
  return cases;
}

std::vector<BadCase> BadCases() {
  std::vector<BadCase> cases = {
      // Unknown names
      {"UnknownKey", "[worker]\nbatchsize = 5\n", {}, {"worker.batchsize", "unknown setting"}},
      {"UnknownKeyListsTheKnownOnes",
       "[retry]\nattempts = 5\n",
       {},
       {"retry.attempts", "max_attempts"}},
      {"UnknownSection", "[wrker]\nbatch_size = 5\n", {}, {"wrker", "unknown section"}},
      {"KeyOutsideASection", "batch_size = 5\n", {}, {"batch_size", "unknown setting"}},
      {"KeyInTheWrongSection", "[retry]\nbatch_size = 5\n", {}, {"retry.batch_size"}},
      {"TableNestedInASection", "[worker.extra]\nx = 1\n", {}, {"worker.extra", "unknown setting"}},
      {"SectionThatIsNotATable", "worker = 5\n", {}, {"worker", "expected a [worker] table"}},
      // Wrong TOML types
      {"StringForInteger",
       "[worker]\nbatch_size = \"500\"\n",
       {},
       {"worker.batch_size", "expected an integer", "got a string"}},
      {"FloatForInteger",
       "[worker]\nlease_seconds = 30.0\n",
       {},
       {"worker.lease_seconds", "expected an integer", "floating-point"}},
      {"BooleanForInteger",
       "[retry]\nmax_attempts = true\n",
       {},
       {"retry.max_attempts", "expected an integer", "boolean"}},
      {"IntegerForString", "[log]\nlevel = 1\n", {}, {"log.level", "expected a string"}},
      {"ArrayForUrl",
       "[database]\nurl = [\"postgres://db\"]\n",
       {},
       {"database.url", "expected a string", "array"}},
      {"IntegerBeyondIntInFile",
       "[worker]\nbatch_size = 9999999999\n",
       {},
       {"worker.batch_size", "between 1 and 10000"}},
      // Bad environment values
      {"EnvWord",
       "",
       {{"NUDGE_WORKER_BATCH_SIZE", "abc"}},
       {"NUDGE_WORKER_BATCH_SIZE (worker.batch_size): expected an integer, got \"abc\""}},
      {"EnvTrailingText",
       "",
       {{"NUDGE_WORKER_BATCH_SIZE", "12abc"}},
       {"NUDGE_WORKER_BATCH_SIZE", "worker.batch_size", "\"12abc\""}},
      {"EnvTrailingSpace",
       "",
       {{"NUDGE_RETRY_MAX_ATTEMPTS", "3 "}},
       {"NUDGE_RETRY_MAX_ATTEMPTS", "retry.max_attempts", "expected an integer"}},
      {"EnvLeadingSpace",
       "",
       {{"NUDGE_RETRY_MAX_ATTEMPTS", " 3"}},
       {"NUDGE_RETRY_MAX_ATTEMPTS", "retry.max_attempts", "expected an integer"}},
      {"EnvPlusSign",
       "",
       {{"NUDGE_RETRY_MAX_ATTEMPTS", "+3"}},
       {"NUDGE_RETRY_MAX_ATTEMPTS", "retry.max_attempts", "expected an integer"}},
      {"EnvDecimal",
       "",
       {{"NUDGE_WORKER_LEASE_SECONDS", "1.5"}},
       {"NUDGE_WORKER_LEASE_SECONDS", "worker.lease_seconds", "expected an integer"}},
      {"EnvHex",
       "",
       {{"NUDGE_WORKER_LEASE_SECONDS", "0x10"}},
       {"NUDGE_WORKER_LEASE_SECONDS", "worker.lease_seconds", "expected an integer"}},
      {"EnvEmptyInteger",
       "",
       {{"NUDGE_WORKER_CONCURRENCY", ""}},
       {"NUDGE_WORKER_CONCURRENCY", "worker.concurrency", "expected an integer"}},
      {"EnvIntegerBeyondInt64",
       "",
       {{"NUDGE_WORKER_BATCH_SIZE", "99999999999999999999999"}},
       {"NUDGE_WORKER_BATCH_SIZE", "worker.batch_size", "between 1 and 10000"}},
      // Environment typos
      {"EnvTypo",
       "",
       {{"NUDGE_WORKER_BATCHSIZE", "5"}},
       {"NUDGE_WORKER_BATCHSIZE", "unknown setting", "batch_size"}},
      {"EnvTypoInDatabase",
       "",
       {{"NUDGE_DATABASE_PASSWORD", "x"}},
       {"NUDGE_DATABASE_PASSWORD", "unknown setting"}},
      {"EnvTypoInLog", "", {{"NUDGE_LOG_LEVL", "info"}}, {"NUDGE_LOG_LEVL", "unknown setting"}},
      // A section one slip away from ours is a typo too (other NUDGE_* names are left alone).
      {"EnvTypoInSection",
       "",
       {{"NUDGE_WEBHOK_SECRET", "abcdefghijklmnopqrstu"}},
       {"NUDGE_WEBHOK_SECRET", "did you mean NUDGE_WEBHOOK_SECRET?"}},
      {"EnvTypoInSectionSwapped",
       "",
       {{"NUDGE_DATABSE_URL", "postgresql://x@h/db"}},
       {"NUDGE_DATABSE_URL", "did you mean NUDGE_DATABASE_URL?"}},
      {"EnvTypoInSecrets", "", {{"NUDGE_SECRET_TRACKER", "abc"}}, {"NUDGE_SECRETS_TRACKER?"}},
      {"EnvTypoInShortSection", "", {{"NUDGE_EMIAL_FROM", "a@b.c"}}, {"NUDGE_EMAIL_FROM?"}},
      // Log level
      {"LogLevelUnknown",
       "[log]\nlevel = \"verbose\"\n",
       {},
       {"log.level", "debug, info, warn or error", "\"verbose\""}},
      {"LogLevelUpperCase", "[log]\nlevel = \"INFO\"\n", {}, {"log.level", "\"INFO\""}},
      {"LogLevelFromEnv",
       "",
       {{"NUDGE_LOG_LEVEL", "trace"}},
       {"NUDGE_LOG_LEVEL", "(log.level)", "\"trace\""}},
      // API authentication
      {"AuthUnknown", "[api]\nauth = \"none\"\n", {}, {"api.auth", "token or off", "\"none\""}},
      {"AuthFromEnvUpperCase",
       "",
       {{"NUDGE_API_AUTH", "OFF"}},
       {"NUDGE_API_AUTH", "(api.auth)", "\"OFF\""}},
      // Database URL
      {"UrlEmpty", "[database]\nurl = \"\"\n", {}, {"database.url", "must not be empty"}},
      {"UrlOtherScheme",
       "[database]\nurl = \"mysql://db/nudge\"\n",
       {},
       {"database.url", "postgresql://"}},
      {"UrlBareHost", "[database]\nurl = \"db.example.com\"\n", {}, {"database.url"}},
      {"UrlEmptyFromEnv",
       "",
       {{"NUDGE_DATABASE_URL", ""}},
       {"NUDGE_DATABASE_URL", "(database.url)", "must not be empty"}},
      // Networks of webhook.allow_private
      {"AllowPrivateNotAnArray",
       "[webhook]\nallow_private = \"10.0.0.0/8\"\n",
       {},
       {"webhook.allow_private", "expected an array of strings", "got a string"}},
      {"AllowPrivateArrayOfNumbers",
       "[webhook]\nallow_private = [10]\n",
       {},
       {"webhook.allow_private", "expected an array of strings", "an integer"}},
      {"AllowPrivateWithoutPrefix",
       "[webhook]\nallow_private = [\"127.0.0.1\"]\n",
       {},
       {"webhook.allow_private", "item 1", "prefix length", "\"127.0.0.1\""}},
      {"AllowPrivateHostName",
       "[webhook]\nallow_private = [\"10.0.0.0/8\", \"localhost/8\"]\n",
       {},
       {"webhook.allow_private", "item 2", "IPv4 address"}},
      {"AllowPrivateShortIpv4",
       "[webhook]\nallow_private = [\"127.1/8\"]\n",
       {},
       {"webhook.allow_private", "IPv4 address"}},
      {"AllowPrivatePrefixTooLong",
       "[webhook]\nallow_private = [\"10.0.0.0/33\"]\n",
       {},
       {"webhook.allow_private", "from 0 to 32"}},
      {"AllowPrivateIpv6PrefixTooLong",
       "[webhook]\nallow_private = [\"::1/129\"]\n",
       {},
       {"webhook.allow_private", "from 0 to 128"}},
      {"AllowPrivateHostBits",
       "[webhook]\nallow_private = [\"127.0.0.1/8\"]\n",
       {},
       {"webhook.allow_private", "bits set past its prefix", "127.0.0.0/8"}},
      {"AllowPrivateFromEnvEmptyItem",
       "",
       {{"NUDGE_WEBHOOK_ALLOW_PRIVATE", "127.0.0.0/8,,::1/128"}},
       {"NUDGE_WEBHOOK_ALLOW_PRIVATE (webhook.allow_private)", "item 2"}},
      {"AllowPrivateFromEnvSignedPrefix",
       "",
       {{"NUDGE_WEBHOOK_ALLOW_PRIVATE", "10.0.0.0/+8"}},
       {"NUDGE_WEBHOOK_ALLOW_PRIVATE", "from 0 to 32"}},
      // A sender the worker would refuse at every message: refused at start, with the reason.
      {"EmailFromNonAscii",
       "[email]\nfrom = \"nudge@ex\u00e4mple.com\"\n",
       {},
       {"email.from", "nudge@example.com", "non-ASCII"}},
      {"EmailFromWithAColonFromEnv",
       "",
       {{"NUDGE_EMAIL_FROM", "nudge:ops@example.com"}},
       {"NUDGE_EMAIL_FROM (email.from)", "it contains ':'"}},
      {"EmailFromTwoAts", "[email]\nfrom = \"a@b@example.com\"\n", {}, {"more than one '@'"}},
      {"EmailFromMisplacedDot", "[email]\nfrom = \"nudge.@example.com\"\n", {}, {"'.'"}},
      // Settings that bound each other
      {"BreakerCapBelowFirstWait",
       "[breaker]\nopen_seconds = 60\nmax_open_seconds = 5\n",
       {},
       {"breaker.max_open_seconds", "at least breaker.open_seconds (60)", "got 5"}},
      {"BreakerCapBelowFirstWaitFromEnv",
       "[breaker]\nmax_open_seconds = 120\n",
       {{"NUDGE_BREAKER_OPEN_SECONDS", "600"}},
       {"breaker.max_open_seconds", "(600)", "got 120"}},
      // Broken TOML
      {"SyntaxError", "[worker]\nbatch_size = = 5\n", {}, {"test.toml:2", "invalid TOML"}},
      {"DuplicateKey",
       "[worker]\nbatch_size = 1\nbatch_size = 2\n",
       {},
       {"test.toml:3", "batch_size"}},
  };
  for (BadCase& range_case : RangeCases()) cases.push_back(std::move(range_case));
  return cases;
}

class RejectedConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(RejectedConfig, ThrowsConfigErrorNamingTheSetting) {
  const BadCase& bad = GetParam();
  const std::string message = ErrorOf([&] { FromText(bad.toml, bad.env); });
  for (const std::string& part : bad.expected) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "missing \"" << part << "\" in: " << message;
  }
}

INSTANTIATE_TEST_SUITE_P(AllBadCases, RejectedConfig, ::testing::ValuesIn(BadCases()),
                         [](const auto& info) { return info.param.label; });

// ---- Secrets and message hygiene ----

constexpr const char* kPassword = "Sup3rSecretPw";

class DatabasePassword : public ::testing::TestWithParam<BadCase> {};

TEST_P(DatabasePassword, NeverAppearsInTheErrorMessage) {
  const BadCase& bad = GetParam();
  const std::string message = ErrorOf([&] { FromText(bad.toml, bad.env); });
  EXPECT_EQ(message.find(kPassword), std::string::npos) << message;
  for (const std::string& part : bad.expected) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "missing \"" << part << "\" in: " << message;
  }
}

std::vector<BadCase> PasswordCases() {
  const std::string url = std::string("postgresql://app:") + kPassword + "@db/nudge";
  const std::string quoted = "\"" + url + "\"";
  return {
      {"WrongSchemeInFile",
       "[database]\nurl = \"mysql://app:" + std::string(kPassword) + "@db\"\n",
       {},
       {"database.url", "postgresql://"}},
      {"WrongSchemeInEnv",
       "",
       {{"NUDGE_DATABASE_URL", "http://app:" + std::string(kPassword) + "@db"}},
       {"NUDGE_DATABASE_URL", "database.url"}},
      {"LeadingSpaceInEnv", "", {{"NUDGE_DATABASE_URL", " " + url}}, {"NUDGE_DATABASE_URL"}},
      // libpq would take what follows the first @ for the host and quote it in every error.
      {"UnescapedAtInThePassword",
       "",
       {{"NUDGE_DATABASE_URL", "postgresql://app:Top@" + std::string(kPassword) + "@db/nudge"}},
       {"NUDGE_DATABASE_URL", "more than one @", "%40"}},
      // libpq would take what precedes the / for the host and port and quote it.
      {"UnescapedSlashInThePassword",
       "",
       {{"NUDGE_DATABASE_URL", "postgresql://app:Se/" + std::string(kPassword) + "@db/nudge"}},
       {"NUDGE_DATABASE_URL", "a / before its @", "%2F"}},
      {"UrlInAnArray", "[database]\nurl = [" + quoted + "]\n", {}, {"database.url", "array"}},
      {"UnquotedUrl", "[database]\nurl = " + url + "\n", {}, {"test.toml:2", "invalid TOML"}},
      {"UnterminatedUrl", "[database]\nurl = \"" + url + "\n", {}, {"test.toml:2"}},
      {"MisspelledKey", "[database]\nulr = " + quoted + "\n", {}, {"database.ulr"}},
      {"UrlInTheWrongSection", "[worker]\nurl = " + quoted + "\n", {}, {"worker.url"}},
      {"UrlOutsideASection", "url = " + quoted + "\n", {}, {"url", "unknown setting"}},
      {"UrlDefinedTwice",
       "[database]\nurl = " + quoted + "\nurl = " + quoted + "\n",
       {},
       {"test.toml:3"}},
      {"MisspelledVariable", "", {{"NUDGE_DATABASE_UR", url}}, {"NUDGE_DATABASE_UR"}},
      {"ValidUrlOtherError",
       "[database]\nurl = " + quoted + "\npool_size = 0\n",
       {},
       {"database.pool_size"}},
      {"ValidUrlInEnvOtherError",
       "",
       {{"NUDGE_DATABASE_URL", url}, {"NUDGE_LOG_LEVEL", "loud"}},
       {"NUDGE_LOG_LEVEL"}},
      // The other secrets: the webhook signing key and an SMTP URL with a password.
      {"WebhookSecretTooShort",
       "",
       {{"NUDGE_WEBHOOK_SECRET", std::string(kPassword).substr(0, 12)}},
       {"NUDGE_WEBHOOK_SECRET", "at least 16 characters"}},
      {"WebhookSecretNotText",
       "[webhook]\nsecret = [\"" + std::string(kPassword) + "\"]\n",
       {},
       {"webhook.secret"}},
      {"SmtpUrlWrongScheme",
       "[email]\nsmtp_url = \"http://app:" + std::string(kPassword) + "@relay\"\n",
       {},
       {"email.smtp_url", "smtp://"}},
      {"SmtpUrlWrongSchemeInEnv",
       "",
       {{"NUDGE_EMAIL_SMTP_URL", "imap://app:" + std::string(kPassword) + "@relay"}},
       {"NUDGE_EMAIL_SMTP_URL", "smtps://"}},
      // URLs no email could go out through: refused at start, not at every delivery.
      {"SmtpUrlWithAnUnescapedAt",
       "",
       {{"NUDGE_EMAIL_SMTP_URL", "smtp://app:" + std::string(kPassword) + "@x@relay:25"}},
       {"NUDGE_EMAIL_SMTP_URL", "more than one @", "%40"}},
      {"SmtpUrlWithoutAHost",
       "[email]\nsmtp_url = \"smtp://app:" + std::string(kPassword) + "@:25\"\n",
       {},
       {"email.smtp_url", "host"}},
      // A raw / in the password ends the host part early: said so, not "a bad port".
      {"SmtpUrlWithARawSlashInItsPassword",
       "",
       {{"NUDGE_EMAIL_SMTP_URL", "smtp://app:" + std::string(kPassword) + "/x@relay:25"}},
       {"NUDGE_EMAIL_SMTP_URL", "before its @", "%2F"}},
      {"EmailCaFileThatCannotBeRead",
       "[email]\nca_file = \"/nonexistent/relay-ca.pem\"\n",
       {},
       {"email.ca_file", "cannot be read", "/nonexistent/relay-ca.pem"}},
      {"SmtpUrlWithASpace",
       "",
       {{"NUDGE_EMAIL_SMTP_URL", "smtp://app:" + std::string(kPassword) + "@relay:25 extra"}},
       {"NUDGE_EMAIL_SMTP_URL", "must not contain white space"}},
      {"SmtpUrlPortOutOfRange",
       "",
       {{"NUDGE_EMAIL_SMTP_URL", "smtps://app:" + std::string(kPassword) + "@relay:99999"}},
       {"NUDGE_EMAIL_SMTP_URL", "port from 1 to 65535"}},
  };
}

INSTANTIATE_TEST_SUITE_P(AllPasswordCases, DatabasePassword, ::testing::ValuesIn(PasswordCases()),
                         [](const auto& info) { return info.param.label; });

// ---- [secrets] ----

TEST(ConfigSecrets, ComeFromTheFileAndTheEnvironmentWhichWins) {
  const Config config =
      FromText("[secrets]\nslack = \"xoxb-file\"\napi_token = \"tok en\"\n",
               {{"NUDGE_SECRETS_SLACK", "xoxb-env"}, {"NUDGE_SECRETS_TWILIO_AUTH", "AC1:pw"}});
  EXPECT_EQ(config.secrets, (Secrets{{"api_token", {"tok en", {}}},
                                     {"slack", {"xoxb-env", {}}},
                                     {"twilio_auth", {"AC1:pw", {}}}}));
}

// Where a header may send a secret: host names, whole or "*." and a domain, from the file and
// the environment (comma-separated), in lower case.
TEST(ConfigSecrets, TheirHostsComeFromTheFileAndTheEnvironment) {
  const Config config = FromText(
      "[secrets]\ntracker = \"tok-123\"\nslack = \"xoxb-1\"\n"
      "[secret_hosts]\ntracker = [\"API.Tracker.example\", \"*.tracker.example\"]\n",
      {{"NUDGE_SECRET_HOSTS_SLACK", "hooks.slack.com, 127.0.0.1,[::1]"}});
  EXPECT_EQ(config.secrets.at("tracker").hosts,
            (std::vector<std::string>{"api.tracker.example", "*.tracker.example"}));
  EXPECT_EQ(config.secrets.at("slack").hosts,
            (std::vector<std::string>{"hooks.slack.com", "127.0.0.1", "[::1]"}));
}

TEST(ConfigSecrets, HostsOfNoSecretOrThatMatchAnyHostAreRefused) {
  const std::string pw = "[secrets]\ntracker = \"tok-123\"\n";
  for (const auto& [text, env, words] :
       std::vector<std::tuple<std::string, Environment, std::vector<std::string>>>{
           {"",
            {{"NUDGE_SECRET_HOSTS_TRACKER", "api.example.com"}},
            {"secret_hosts.tracker", "names no secret"}},
           {pw + "[secret_hosts]\ntracker = [\"*.com\"]\n",
            {},
            {"secret_hosts.tracker", "*.example.com"}},
           {pw + "[secret_hosts]\ntracker = [\"*\"]\n", {}, {"secret_hosts.tracker", "host name"}},
           {pw + "[secret_hosts]\ntracker = [\"api.example.com/x\"]\n",
            {},
            {"secret_hosts.tracker", "item 1"}},
           {pw + "[secret_hosts]\ntracker = \"api.example.com\"\n",
            {},
            {"secret_hosts.tracker", "list of host names"}},
           {pw,
            {{"NUDGE_SECRET_HOSTS_TRACKER", "api.example.com,,b.example.com"}},
            {"NUDGE_SECRET_HOSTS_TRACKER", "item 2"}},
       }) {
    try {
      FromText(text, env);
      ADD_FAILURE() << text << " was taken";
    } catch (const ConfigError& e) {
      for (const auto& word : words)
        EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("tok-123"), std::string::npos) << e.what();
    }
  }
}

TEST(ConfigSecrets, NoneByDefault) {
  EXPECT_TRUE(FromText("").secrets.empty());
}

// A secret's value never appears in the message about it.
class BadSecret : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadSecret, IsRefusedNamingItWithoutItsValue) {
  const BadCase& bad = GetParam();
  const std::string message = ErrorOf([&] { FromText(bad.toml, bad.env); });
  EXPECT_EQ(message.find(kPassword), std::string::npos) << message;
  for (const std::string& part : bad.expected) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "missing \"" << part << "\" in: " << message;
  }
}

std::vector<BadCase> SecretCases() {
  const std::string pw = kPassword;
  return {
      {"LineBreakInFile",
       "[secrets]\nslack = \"" + pw + "\\r\\nX-Evil: 1\"\n",
       {},
       {"secrets.slack", "line breaks", "test.toml:2"}},
      {"LineBreakInEnv",
       "",
       {{"NUDGE_SECRETS_SLACK", pw + "\nX-Evil: 1"}},
       {"NUDGE_SECRETS_SLACK", "(secrets.slack)", "line breaks"}},
      {"Empty", "", {{"NUDGE_SECRETS_SLACK", ""}}, {"NUDGE_SECRETS_SLACK", "3 to 8192 bytes"}},
      {"TooShortToMask", "[secrets]\nslack = \"ab\"\n", {}, {"secrets.slack", "3 to 8192 bytes"}},
      {"TooLong",
       "",
       {{"NUDGE_SECRETS_SLACK", pw + std::string(8192, 'x')}},
       {"NUDGE_SECRETS_SLACK", "3 to 8192 bytes"}},
      {"NotAString", "[secrets]\nslack = 5\n", {}, {"secrets.slack", "expected a string"}},
      {"NameWithADash",
       "[secrets]\n\"slack-bot\" = \"" + pw + "\"\n",
       {},
       {"secrets.slack-bot", "letters, digits and _"}},
      {"NameTooLong",
       "",
       {{"NUDGE_SECRETS_" + std::string(65, 'A'), pw}},
       {"letters, digits and _"}},
      {"NotATable", "secrets = \"" + pw + "\"\n", {}, {"secrets", "table"}},
  };
}

INSTANTIATE_TEST_SUITE_P(AllSecretCases, BadSecret, ::testing::ValuesIn(SecretCases()),
                         [](const auto& info) { return info.param.label; });

TEST(ConfigMessages, LongValuesAreCutTo60Characters) {
  const std::string message = ErrorOf([] {
    FromText("", {{"NUDGE_LOG_LEVEL", std::string(200, 'x')}});
  });
  EXPECT_NE(message.find("\"" + std::string(60, 'x') + "...\""), std::string::npos) << message;
  EXPECT_EQ(message.find(std::string(61, 'x')), std::string::npos) << message;
}

TEST(ConfigMessages, LongValuesAreCutOnACharacterBoundary) {
  // 60 bytes would end inside the "é" at bytes 59 and 60: the cut comes before it.
  const std::string message = ErrorOf([] {
    FromText("", {{"NUDGE_LOG_LEVEL", std::string(59, 'x') + "\xC3\xA9" + std::string(50, 'y')}});
  });
  EXPECT_NE(message.find("\"" + std::string(59, 'x') + "...\""), std::string::npos) << message;
}

TEST(ConfigMessages, ControlCharactersInValuesAreNotPrinted) {
  const std::string message = ErrorOf([] { FromText("", {{"NUDGE_LOG_LEVEL", "in\nfo\x1b"}}); });
  EXPECT_NE(message.find("\"in?fo?\""), std::string::npos) << message;
}

// ---- process_environment ----

TEST(ProcessEnvironment, KeepsOnlyNudgeVariables) {
  ASSERT_EQ(setenv("NUDGE_CONFIG_TEST_MARKER", "a=b", 1), 0);
  ASSERT_EQ(setenv("CONFIG_TEST_NOT_NUDGE", "1", 1), 0);
  const Environment env = process_environment();
  unsetenv("NUDGE_CONFIG_TEST_MARKER");
  unsetenv("CONFIG_TEST_NOT_NUDGE");
  ASSERT_EQ(env.count("NUDGE_CONFIG_TEST_MARKER"), 1u);
  EXPECT_EQ(env.at("NUDGE_CONFIG_TEST_MARKER"), "a=b");  // split at the first '=' only
  for (const auto& [name, value] : env) EXPECT_EQ(name.rfind("NUDGE_", 0), 0u) << name;
}

}  // namespace
}  // namespace nudge
