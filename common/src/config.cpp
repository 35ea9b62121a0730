// Settings: built-in defaults, then a TOML file, then NUDGE_<SECTION>_<KEY> variables.
// Every setting is one row of kSettings; file keys, variable names, types, ranges and error
// messages are all derived from that row, so adding a setting is a field plus one line here.

#include "nudge/config.hpp"

#include <toml++/toml.h>
#include <unistd.h>  // environ

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "nudge/address_guard.hpp"
#include "nudge/email_address.hpp"
#include "nudge/secret_hosts.hpp"
#include "nudge/secret_placeholders.hpp"
#include "nudge/secrets.hpp"
#include "nudge/utf8.hpp"

namespace nudge {
namespace {

using IntField = int& (*)(Config&);
using TextField = std::string& (*)(Config&);
using ListField = std::vector<std::string>& (*)(Config&);
// Returns what is wrong with a text value (without echoing it), or nullopt if it is fine.
using TextRule = std::optional<std::string> (*)(const std::string&);

// One setting: where it lives in the file and in Config, and which values it accepts.
struct Setting {
  std::string_view section;
  std::string_view key;
  std::variant<IntField, TextField, ListField> field;
  std::int64_t min = 0;  // inclusive range; integers only
  std::int64_t max = 0;
  TextRule rule = nullptr;  // text, and each item of a list
  bool secret = false;      // may hold a password: never shown in messages
};

// Accessor for config.*kSection.*kMember; keeps each table row to one line.
template <auto kSection, auto kMember>
auto& FieldOf(Config& config) {
  return (config.*kSection).*kMember;
}

// What follows "scheme://" up to the path, query or fragment: user-info and host(s).
std::string_view Authority(std::string_view after_scheme) {
  return after_scheme.substr(0, after_scheme.find_first_of("/?#"));
}

// libpq and libcurl end the user-info at the first @, so a second one moves the rest of the
// password into the host name, where their errors would quote it.
std::optional<std::string> CheckOneAt(std::string_view authority) {
  const auto at = authority.find('@');
  if (at != std::string_view::npos && authority.find('@', at + 1) != std::string_view::npos)
    return "has more than one @: write an @ in the user name or password as %40";
  return std::nullopt;
}

// libpq ends the user-info at an @ only when no / comes first: a / in a password makes its start
// the host and the rest a port, which libpq's errors quote ("invalid integer value").
std::optional<std::string> CheckNoSlashInUserInfo(std::string_view after_scheme) {
  const auto slash = after_scheme.find_first_of("@/");
  if (slash == std::string_view::npos || after_scheme[slash] == '@') return std::nullopt;
  const auto colon = after_scheme.substr(0, slash).find(':');
  const auto at = after_scheme.substr(0, after_scheme.find_first_of("?#", slash)).find('@', slash);
  if (colon == std::string_view::npos || at == std::string_view::npos) return std::nullopt;
  const auto port = after_scheme.substr(colon + 1, slash - colon - 1);
  if (!port.empty() &&
      std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c) != 0; }))
    return std::nullopt;  // host:port/path with an @ in the path or database name
  return "has a / before its @: write a / in the user name or password as %2F";
}

std::optional<std::string> CheckDatabaseUrl(const std::string& url) {
  if (url.empty()) return "must not be empty";
  const std::string_view text(url);
  if (text.starts_with("postgresql://") || text.starts_with("postgres://")) {
    const std::string_view after_scheme = text.substr(text.find("://") + 3);
    if (auto problem = CheckNoSlashInUserInfo(after_scheme)) return problem;
    return CheckOneAt(Authority(after_scheme));
  }
  if (text.find('=') != std::string_view::npos) return std::nullopt;  // libpq key=value form
  return "must start with postgresql:// or postgres://, or be a libpq key=value string";
}

std::optional<std::string> CheckLogLevel(const std::string& level) {
  for (std::string_view known : {"debug", "info", "warn", "error"}) {
    if (level == known) return std::nullopt;
  }
  return "must be debug, info, warn or error";
}

std::optional<std::string> CheckHost(const std::string& host) {
  if (host.empty() || host.size() > 253) return "must be a host name or IP address";
  for (const char c : host) {
    const bool ok =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_';
    if (!ok) return "must be a host name or IP address";
  }
  return std::nullopt;
}

std::optional<std::string> CheckAuth(const std::string& auth) {
  if (auth == "token" || auth == "off") return std::nullopt;
  return "must be token or off";
}

std::optional<std::string> CheckWebhookSecret(const std::string& secret) {
  if (!secret.empty() && secret.size() < 16)
    return "must be empty (unsigned) or at least 16 characters";
  return std::nullopt;
}

std::optional<std::string> CheckNetwork(const std::string& text) {
  std::string problem;
  if (!parse_network(text, problem)) return problem;
  return std::nullopt;
}

// smtp[s]://[user[:password]@]host[:port][/...]: what the mail relay's URL must hold for a
// single email to go out. The password is never quoted back.
std::optional<std::string> CheckSmtpUrl(const std::string& url) {
  std::string_view rest(url);
  if (rest.starts_with("smtp://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("smtps://")) {
    rest.remove_prefix(8);
  } else {
    return "must start with smtp:// or smtps://";
  }
  // Said as such: a space after the port read as "a port from 1 to 65535" (explore30a F4).
  if (rest.find_first_of(" \t\r\n") != std::string_view::npos)
    return "must not contain white space (a space in the user name or password is %20)";
  std::string_view host = Authority(rest);
  if (auto problem = CheckOneAt(host)) return problem;
  // A / ? or # in a password ends the host part early: "user:pa" would read as a bad port.
  if (host.find('@') == std::string_view::npos && rest.find('@') != std::string_view::npos)
    return "has a / ? or # before its @: write them in the user name or password as %2F, %3F "
           "and %23";
  if (const auto at = host.find('@'); at != std::string_view::npos) host.remove_prefix(at + 1);
  // The port follows the last colon that is not inside an IPv6 address's brackets.
  const auto colon = host.rfind(':');
  const auto bracket = host.rfind(']');
  std::optional<std::string_view> port;
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) return "must name the mail relay's host (smtp://host:port)";
  if (port) {
    int value = 0;
    const auto [end, error] = std::from_chars(port->data(), port->data() + port->size(), value);
    if (error != std::errc() || end != port->data() + port->size() || value < 1 || value > 65535)
      return "must have a port from 1 to 65535";
  }
  return std::nullopt;
}

// A PEM file the worker reads for every TLS conversation: one it cannot read is refused at
// start, not at every delivery ("Problem with the SSL CA cert").
std::optional<std::string> CheckReadableFile(const std::string& path) {
  if (path.empty()) return std::nullopt;
  std::ifstream file(path);
  if (!file.good() || std::filesystem::is_directory(path))
    return "cannot be read: " + path + " (a PEM file of certificates)";
  return std::nullopt;
}

// As the worker checks it before each message: a sender it would refuse stops the program here.
std::optional<std::string> CheckEmailAddress(const std::string& address) {
  if (const auto problem = email_address_problem(address))
    return "must be an email address like nudge@example.com (" + *problem + ")";
  return std::nullopt;
}

// The one list of settings. Ranges are documented in config/nudge.toml; keep them in step.
constexpr Setting kSettings[] = {
    {"database", "url", &FieldOf<&Config::database, &DatabaseConfig::url>, 0, 0, &CheckDatabaseUrl,
     /*secret=*/true},
    {"database", "pool_size", &FieldOf<&Config::database, &DatabaseConfig::pool_size>, 1, 256},
    {"database", "statement_timeout_ms",
     &FieldOf<&Config::database, &DatabaseConfig::statement_timeout_ms>, 0, 3600000},
    {"database", "lock_timeout_ms", &FieldOf<&Config::database, &DatabaseConfig::lock_timeout_ms>,
     0, 3600000},
    {"database", "event_transactions",
     &FieldOf<&Config::database, &DatabaseConfig::event_transactions>, 0, 256},
    {"worker", "batch_size", &FieldOf<&Config::worker, &WorkerConfig::batch_size>, 1, 10000},
    {"worker", "concurrency", &FieldOf<&Config::worker, &WorkerConfig::concurrency>, 1, 64},
    {"worker", "lease_seconds", &FieldOf<&Config::worker, &WorkerConfig::lease_seconds>, 5, 3600},
    {"worker", "idle_cap_seconds", &FieldOf<&Config::worker, &WorkerConfig::idle_cap_seconds>, 1,
     3600},
    {"worker", "reconnect_max_ms", &FieldOf<&Config::worker, &WorkerConfig::reconnect_max_ms>, 100,
     600000},
    {"worker", "deliveries_in_flight",
     &FieldOf<&Config::worker, &WorkerConfig::deliveries_in_flight>, 1, 10000},
    {"worker", "stop_grace_ms", &FieldOf<&Config::worker, &WorkerConfig::stop_grace_ms>, 0, 600000},
    {"worker", "metrics_port", &FieldOf<&Config::worker, &WorkerConfig::metrics_port>, 0, 65535},
    {"worker", "metrics_address", &FieldOf<&Config::worker, &WorkerConfig::metrics_address>, 0, 0,
     &CheckHost},
    {"retry", "max_attempts", &FieldOf<&Config::retry, &RetryConfig::max_attempts>, 1, 100},
    {"retry", "base_delay_ms", &FieldOf<&Config::retry, &RetryConfig::base_delay_ms>, 1, 86400000},
    {"retry", "max_delay_ms", &FieldOf<&Config::retry, &RetryConfig::max_delay_ms>, 1, 604800000},
    {"misfire", "threshold_seconds", &FieldOf<&Config::misfire, &MisfireConfig::threshold_seconds>,
     1, 86400},
    {"misfire", "fire_all_cap", &FieldOf<&Config::misfire, &MisfireConfig::fire_all_cap>, 1, 10000},
    {"breaker", "failures", &FieldOf<&Config::breaker, &BreakerConfig::failures>, 0, 1000},
    {"breaker", "open_seconds", &FieldOf<&Config::breaker, &BreakerConfig::open_seconds>, 1, 86400},
    {"breaker", "max_open_seconds", &FieldOf<&Config::breaker, &BreakerConfig::max_open_seconds>, 1,
     604800},
    {"webhook", "secret", &FieldOf<&Config::webhook, &WebhookConfig::secret>, 0, 0,
     &CheckWebhookSecret, /*secret=*/true},
    {"webhook", "connect_timeout_ms",
     &FieldOf<&Config::webhook, &WebhookConfig::connect_timeout_ms>, 1, 600000},
    {"webhook", "timeout_ms", &FieldOf<&Config::webhook, &WebhookConfig::timeout_ms>, 1, 600000},
    {"webhook", "allow_private", &FieldOf<&Config::webhook, &WebhookConfig::allow_private>, 0, 0,
     &CheckNetwork},
    {"email", "smtp_url", &FieldOf<&Config::email, &EmailConfig::smtp_url>, 0, 0, &CheckSmtpUrl,
     /*secret=*/true},
    {"email", "from", &FieldOf<&Config::email, &EmailConfig::from>, 0, 0, &CheckEmailAddress},
    {"email", "timeout_ms", &FieldOf<&Config::email, &EmailConfig::timeout_ms>, 1, 600000},
    {"email", "connections", &FieldOf<&Config::email, &EmailConfig::connections>, 1, 1000},
    {"email", "ca_file", &FieldOf<&Config::email, &EmailConfig::ca_file>, 0, 0, &CheckReadableFile},
    {"history", "retention_days", &FieldOf<&Config::history, &HistoryConfig::retention_days>, 1,
     3650},
    {"history", "prune_interval_seconds",
     &FieldOf<&Config::history, &HistoryConfig::prune_interval_seconds>, 10, 86400},
    {"api", "host", &FieldOf<&Config::api, &ApiConfig::host>, 0, 0, &CheckHost},
    {"api", "port", &FieldOf<&Config::api, &ApiConfig::port>, 1, 65535},
    {"api", "threads", &FieldOf<&Config::api, &ApiConfig::threads>, 1, 256},
    {"api", "max_body_bytes", &FieldOf<&Config::api, &ApiConfig::max_body_bytes>, 1024, 67108864},
    {"api", "request_timeout_ms", &FieldOf<&Config::api, &ApiConfig::request_timeout_ms>, 100,
     600000},
    {"api", "max_connections", &FieldOf<&Config::api, &ApiConfig::max_connections>, 1, 1000000},
    {"api", "keep_alive_seconds", &FieldOf<&Config::api, &ApiConfig::keep_alive_seconds>, 1, 3600},
    {"api", "tls_cert", &FieldOf<&Config::api, &ApiConfig::tls_cert>},
    {"api", "tls_key", &FieldOf<&Config::api, &ApiConfig::tls_key>},
    {"api", "max_streams", &FieldOf<&Config::api, &ApiConfig::max_streams>, 1, 100000},
    {"api", "max_streams_per_token", &FieldOf<&Config::api, &ApiConfig::max_streams_per_token>, 1,
     100000},
    {"api", "stream_buffer_bytes", &FieldOf<&Config::api, &ApiConfig::stream_buffer_bytes>, 4096,
     1073741824},
    {"api", "stream_heartbeat_seconds",
     &FieldOf<&Config::api, &ApiConfig::stream_heartbeat_seconds>, 1, 3600},
    {"api", "auth", &FieldOf<&Config::api, &ApiConfig::auth>, 0, 0, &CheckAuth},
    {"api", "rate_per_token", &FieldOf<&Config::api, &ApiConfig::rate_per_token>, 0, 1000000},
    {"api", "burst", &FieldOf<&Config::api, &ApiConfig::burst>, 1, 1000000},
    {"api", "auth_failures_per_minute",
     &FieldOf<&Config::api, &ApiConfig::auth_failures_per_minute>, 0, 1000000},
    {"api", "token_cache_seconds", &FieldOf<&Config::api, &ApiConfig::token_cache_seconds>, 1,
     3600},
    {"log", "level", &FieldOf<&Config::log, &LogConfig::level>, 0, 0, &CheckLogLevel},
};

constexpr std::string_view kEnvPrefix = "NUDGE_";
constexpr std::size_t kMaxShownChars = 60;
// [secrets] is the one section whose keys are the user's own: names of values, not settings.
constexpr std::string_view kSecretsSection = "secrets";
constexpr std::string_view kSecretHostsSection = "secret_hosts";
constexpr std::size_t kMaxSecretBytes = 8192;

bool IsInteger(const Setting& setting) {
  return std::holds_alternative<IntField>(setting.field);
}

bool IsList(const Setting& setting) {
  return std::holds_alternative<ListField>(setting.field);
}

std::string Name(const Setting& setting) {
  return std::string(setting.section) + "." + std::string(setting.key);
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string EnvPrefix(std::string_view section) {
  return std::string(kEnvPrefix) + Upper(section) + "_";
}

std::string EnvName(const Setting& setting) {
  return EnvPrefix(setting.section) + Upper(setting.key);
}

// Sections in table order, each once, then [secrets].
std::vector<std::string_view> Sections() {
  std::vector<std::string_view> sections;
  for (const Setting& setting : kSettings) {
    if (sections.empty() || sections.back() != setting.section) sections.push_back(setting.section);
  }
  sections.push_back(kSecretsSection);
  return sections;
}

bool IsSection(std::string_view name) {
  for (std::string_view section : Sections()) {
    if (section == name) return true;
  }
  return false;
}

const Setting* FindSetting(std::string_view section, std::string_view key) {
  for (const Setting& setting : kSettings) {
    if (setting.section == section && setting.key == key) return &setting;
  }
  return nullptr;
}

const Setting* FindByEnvName(std::string_view variable) {
  for (const Setting& setting : kSettings) {
    if (EnvName(setting) == variable) return &setting;
  }
  return nullptr;
}

std::string Join(const std::vector<std::string_view>& items) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// "(worker has: batch_size, ...)": the likely intended key, for typos.
std::string KnownKeys(std::string_view section) {
  std::vector<std::string_view> keys;
  for (const Setting& setting : kSettings) {
    if (setting.section == section) keys.push_back(setting.key);
  }
  return " (" + std::string(section) + " has: " + Join(keys) + ")";
}

// Makes untrusted text safe to print: at most 60 bytes (cut on a UTF-8 boundary), no control
// characters, so a pasted blob cannot flood or garble the log.
std::string Clip(std::string_view text) {
  const std::string_view shown = utf8::cut(text, kMaxShownChars);
  const bool cut = shown.size() < text.size();
  std::string out;
  for (char c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    out += (byte < 0x20 || byte == 0x7F) ? '?' : c;
  }
  return cut ? out + "..." : out;
}

// A problem with a value, quoting the value unless the setting is secret.
std::string Problem(const Setting& setting, std::string_view problem, std::string_view value) {
  if (setting.secret) return std::string(problem);
  return std::string(problem) + ", got \"" + Clip(value) + "\"";
}

std::string RangeProblem(const Setting& setting) {
  return "must be between " + std::to_string(setting.min) + " and " + std::to_string(setting.max);
}

// What is being set and where it came from, to wrap every message about one value.
struct Where {
  std::string subject;  // "worker.batch_size" or "NUDGE_WORKER_BATCH_SIZE (worker.batch_size)"
  std::string origin;   // " in /etc/nudge.toml:3", or empty for a variable
};

[[noreturn]] void Fail(const Where& where, std::string_view problem) {
  throw ConfigError(where.subject + ": " + std::string(problem) + where.origin);
}

// Values are checked as they are applied (not once at the end) so that a message can say
// whether the bad value came from the file or from a variable.
void SetInt(const Setting& setting, std::int64_t value, const Where& where, Config& config) {
  if (value < setting.min || value > setting.max) {
    Fail(where, RangeProblem(setting) + ", got " + std::to_string(value));
  }
  std::get<IntField>(setting.field)(config) = static_cast<int>(value);
}

void SetText(const Setting& setting, std::string value, const Where& where, Config& config) {
  if (setting.rule != nullptr) {
    if (const auto problem = setting.rule(value)) Fail(where, Problem(setting, *problem, value));
  }
  std::get<TextField>(setting.field)(config) = std::move(value);
}

// A list replaces the default (or the file's list) whole; each item is checked by the rule.
void SetList(const Setting& setting, std::vector<std::string> items, const Where& where,
             Config& config) {
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (const auto problem = setting.rule(items[i]))
      Fail(where, "item " + std::to_string(i + 1) + " " + Problem(setting, *problem, items[i]));
  }
  std::get<ListField>(setting.field)(config) = std::move(items);
}

// A secret: its name as config and placeholders spell it, and a value that fits in a header
// line. Messages never show the value.
void SetSecret(const std::string& name, std::string value, const Where& where, Config& config) {
  if (!is_secret_name(name)) {
    Fail(where,
         "a secret's name must be 1 to 64 lower-case letters, digits and _ (used as {{secret." +
             Clip(name) + "}})");
  }
  // Shorter ones could not be masked where a receiver echoes them (nudge/secrets.hpp).
  if (value.size() < kMinSecretBytes || value.size() > kMaxSecretBytes)
    Fail(where, "must be 3 to 8192 bytes");
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && byte != '\t') || byte == 0x7F)
      Fail(where, "must not hold line breaks or other control characters (it goes in a header)");
  }
  config.secrets[name].value = std::move(value);
}

// Where a secret may go in a header: host names, each whole or as "*." and the domain under
// which any name will do (never a pattern that would match every host).
void SetSecretHosts(const std::string& name, const std::vector<std::string>& hosts,
                    const Where& where, Config& config) {
  if (!is_secret_name(name)) {
    Fail(where, "names no secret: a secret's name is 1 to 64 lower-case letters, digits and _");
  }
  std::vector<std::string> patterns;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    std::string host = Lower(hosts[i]);
    if (const auto problem = secret_host_problem(host))
      Fail(where, "item " + std::to_string(i + 1) + " \"" + Clip(host) + "\" " + *problem);
    patterns.push_back(std::move(host));
  }
  config.secrets[name].hosts = std::move(patterns);
}

// ---- TOML file ----

std::string TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "an unknown type";
}

std::string At(const std::string& origin, const toml::source_region& region) {
  std::string at = " in " + origin;
  if (region.begin.line > 0) at += ":" + std::to_string(region.begin.line);
  return at;
}

void ApplyNode(const Setting& setting, const toml::node& node, const Where& where, Config& config) {
  if (IsInteger(setting)) {
    const auto* value = node.as_integer();
    if (value == nullptr) Fail(where, "expected an integer, got " + TypeName(node.type()));
    SetInt(setting, value->get(), where, config);
  } else if (IsList(setting)) {
    const auto* array = node.as_array();
    if (array == nullptr) Fail(where, "expected an array of strings, got " + TypeName(node.type()));
    std::vector<std::string> items;
    for (const toml::node& item : *array) {
      const auto* text = item.as_string();
      if (text == nullptr)
        Fail(where, "expected an array of strings, holding " + TypeName(item.type()));
      items.push_back(text->get());
    }
    SetList(setting, std::move(items), where, config);
  } else {
    const auto* value = node.as_string();
    if (value == nullptr) Fail(where, "expected a string, got " + TypeName(node.type()));
    SetText(setting, value->get(), where, config);
  }
}

void ApplySection(std::string_view section, const toml::table& table, const std::string& origin,
                  Config& config) {
  for (const auto& [key, node] : table) {
    const std::string name = std::string(section) + "." + Clip(key.str());
    const Setting* setting = FindSetting(section, key.str());
    if (setting == nullptr) {
      throw ConfigError(name + ": unknown setting" + At(origin, key.source()) + KnownKeys(section));
    }
    ApplyNode(*setting, node, Where{name, At(origin, node.source())}, config);
  }
}

void ApplySecrets(const toml::table& table, const std::string& origin, Config& config) {
  for (const auto& [key, node] : table) {
    const Where where{std::string(kSecretsSection) + "." + Clip(key.str()),
                      At(origin, node.source())};
    const auto* value = node.as_string();
    if (value == nullptr) Fail(where, "expected a string, got " + TypeName(node.type()));
    SetSecret(std::string(key.str()), value->get(), where, config);
  }
}

void ApplySecretHosts(const toml::table& table, const std::string& origin, Config& config) {
  for (const auto& [key, node] : table) {
    const Where where{std::string(kSecretHostsSection) + "." + Clip(key.str()),
                      At(origin, node.source())};
    const auto* list = node.as_array();
    if (list == nullptr) Fail(where, "expected a list of host names, got " + TypeName(node.type()));
    std::vector<std::string> hosts;
    for (const auto& item : *list) {
      const auto* host = item.as_string();
      if (host == nullptr) Fail(where, "expected host names, got " + TypeName(item.type()));
      hosts.push_back(host->get());
    }
    SetSecretHosts(std::string(key.str()), hosts, where, config);
  }
}

void ApplyDocument(const toml::table& root, const std::string& origin, Config& config) {
  for (const auto& [key, node] : root) {
    const std::string name = Clip(key.str());
    const toml::table* table = node.as_table();
    if (key.str() == kSecretsSection && table != nullptr) {
      ApplySecrets(*table, origin, config);
      continue;
    }
    if (key.str() == kSecretHostsSection && table != nullptr) {
      ApplySecretHosts(*table, origin, config);
      continue;
    }
    if (!IsSection(key.str())) {
      const char* what =
          table != nullptr ? ": unknown section" : ": unknown setting outside a section";
      throw ConfigError(name + what + At(origin, key.source()) +
                        " (sections are: " + Join(Sections()) + ")");
    }
    if (table == nullptr) {
      Fail(Where{name, At(origin, node.source())},
           "expected a [" + name + "] table, got " + TypeName(node.type()));
    }
    ApplySection(key.str(), *table, origin, config);
  }
}

toml::table Parse(const std::string& text, const std::string& origin) {
  try {
    return toml::parse(std::string_view(text), std::string_view(origin));
  } catch (const toml::parse_error& error) {
    const auto& begin = error.source().begin;
    throw ConfigError(origin + ":" + std::to_string(begin.line) + ":" +
                      std::to_string(begin.column) +
                      ": invalid TOML: " + std::string(error.description()));
  }
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

[[noreturn]] void FailToRead(const std::string& path, int error) {
  throw ConfigError(path + ": cannot read config file (" + std::generic_category().message(error) +
                    ")");
}

std::string ReadFile(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) FailToRead(path, errno);
  std::string text;
  char buffer[8192];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, file.get())) {
    text.append(buffer, n);
  }
  // A directory opens fine but fails here (EISDIR).
  if (std::ferror(file.get())) FailToRead(path, errno);
  return text;
}

// ---- Environment ----

// A list variable is comma-separated; spaces around items do not count, and an empty variable
// is an empty list.
std::vector<std::string> SplitList(std::string_view raw) {
  std::vector<std::string> items;
  const auto trim = [](std::string_view text) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    return text;
  };
  if (trim(raw).empty()) return items;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = raw.find(',', start);
    items.emplace_back(trim(raw.substr(start, comma - start)));
    if (comma == std::string_view::npos) return items;
    start = comma + 1;
  }
}

void ApplyEnvValue(const Setting& setting, const std::string& raw, const Where& where,
                   Config& config) {
  if (IsList(setting)) return SetList(setting, SplitList(raw), where, config);
  if (!IsInteger(setting)) return SetText(setting, raw, where, config);
  // Whole decimal numbers only: from_chars takes no sign '+', spaces or trailing text.
  std::int64_t value = 0;
  const char* end = raw.data() + raw.size();
  const auto [stop, error] = std::from_chars(raw.data(), end, value);
  if (error == std::errc::result_out_of_range && stop == end) {
    Fail(where, Problem(setting, RangeProblem(setting), raw));
  }
  if (error != std::errc() || stop != end) {
    Fail(where, Problem(setting, "expected an integer", raw));
  }
  SetInt(setting, value, where, config);
}

// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// A NUDGE_<SECTION>_ prefix with no such key is a typo; so is a section one slip away from ours
// (NUDGE_WEBHOK_SECRET would send webhooks unsigned, NUDGE_DATABSE_URL talk to the default
// database). Fail rather than silently ignore them; other NUDGE_* names belong to other tools
// (NUDGE_PG_PORT, NUDGE_CONFIG, ...).
void RejectUnknownVariable(const std::string& variable) {
  for (std::string_view section : Sections()) {
    const std::string prefix = EnvPrefix(section);
    if (!variable.starts_with(prefix)) continue;
    const std::string guess = std::string(section) + "." + Lower(variable.substr(prefix.size()));
    throw ConfigError(Clip(variable) + ": unknown setting " + Clip(guess) + KnownKeys(section));
  }
  const std::size_t end = variable.find('_', kEnvPrefix.size());
  if (end == std::string::npos) return;
  const std::string word = Lower(variable.substr(kEnvPrefix.size(), end - kEnvPrefix.size()));
  for (std::string_view section : Sections()) {
    const std::size_t slips = word.size() >= 6 && section.size() >= 6 ? 2 : 1;
    if (EditDistance(word, section) > slips) continue;
    throw ConfigError(Clip(variable) + ": unknown setting (no section \"" + Clip(word) +
                      "\"; did you mean " + EnvPrefix(section) + Clip(variable.substr(end + 1)) +
                      "?)");
  }
}

void ApplyEnvironment(const Environment& env, Config& config) {
  const std::string secrets_prefix = EnvPrefix(kSecretsSection);
  const std::string hosts_prefix = EnvPrefix(kSecretHostsSection);
  for (const auto& [variable, raw] : env) {
    if (variable.starts_with(secrets_prefix)) {
      const std::string name = Lower(variable.substr(secrets_prefix.size()));
      SetSecret(name, raw, Where{Clip(variable) + " (secrets." + Clip(name) + ")", ""}, config);
    } else if (variable.starts_with(hosts_prefix)) {
      const std::string name = Lower(variable.substr(hosts_prefix.size()));
      SetSecretHosts(name, SplitList(raw),
                     Where{Clip(variable) + " (secret_hosts." + Clip(name) + ")", ""}, config);
    } else if (const Setting* setting = FindByEnvName(variable)) {
      ApplyEnvValue(*setting, raw, Where{variable + " (" + Name(*setting) + ")", ""}, config);
    } else {
      RejectUnknownVariable(variable);  // other NUDGE_* variables belong to other tools
    }
  }
}

// Settings that bound each other, checked once all are known (a file's value may be corrected by a
// variable): a breaker whose cap is below its first wait would open for less after a failed probe.
void CheckTogether(const Config& config) {
  for (const auto& [name, secret] : config.secrets) {
    if (secret.value.empty()) {
      throw ConfigError("secret_hosts." + name + ": names no secret (set [secrets] " + name +
                        " or NUDGE_SECRETS_" + Upper(name) + " too)");
    }
  }
  if (config.breaker.max_open_seconds < config.breaker.open_seconds) {
    throw ConfigError("breaker.max_open_seconds: must be at least breaker.open_seconds (" +
                      std::to_string(config.breaker.open_seconds) + "), got " +
                      std::to_string(config.breaker.max_open_seconds));
  }
}

}  // namespace

Environment process_environment() {
  Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    if (!text.starts_with(kEnvPrefix) || equals == std::string_view::npos) continue;
    env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return env;
}

Config load_config_text(const std::string& toml, const std::string& origin,
                        const Environment& env) {
  Config config;
  ApplyDocument(Parse(toml, origin), origin, config);
  ApplyEnvironment(env, config);
  CheckTogether(config);
  return config;
}

Config load_config(const std::optional<std::string>& file, const Environment& env) {
  if (file) return load_config_text(ReadFile(*file), *file, env);
  Config config;
  ApplyEnvironment(env, config);
  CheckTogether(config);
  return config;
}

}  // namespace nudge
