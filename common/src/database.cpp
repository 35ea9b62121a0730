#include "nudge/database.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <vector>

#include "nudge/connection_options.hpp"
#include "nudge/log.hpp"
#include "nudge/secrets.hpp"

namespace nudge {

namespace {

// Replaces [start, end) of `text` with "***" and keeps what it hid in `hidden`.
void hide(std::string& text, std::size_t start, std::size_t end, std::vector<std::string>& hidden) {
  hidden.push_back(text.substr(start, end - start));
  text.replace(start, end - start, "***");
}

// key=value form: mask the value of every password=... (quoted or not).
std::string redact_keyword_passwords(std::string text, std::vector<std::string>& hidden) {
  static const std::string kKey = "password";
  for (auto pos = text.find(kKey); pos != std::string::npos; pos = text.find(kKey, pos + 1)) {
    auto eq = pos + kKey.size();
    while (eq < text.size() && std::isspace(static_cast<unsigned char>(text[eq]))) ++eq;
    if (eq >= text.size() || text[eq] != '=') continue;
    auto start = eq + 1;
    while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
    auto end = start;
    if (end < text.size() && text[end] == '\'') {
      // Quoted: up to the closing quote, a backslash escaping the next character (libpq's rule).
      for (++end; end < text.size() && text[end] != '\''; ++end) {
        if (text[end] == '\\') ++end;
      }
      end = std::min(end + 1, text.size());
    } else {
      while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) &&
             text[end] != '&')
        ++end;
    }
    hide(text, start, end, hidden);
  }
  return text;
}

// `url` with every password masked; each password it masked is added to `hidden`.
std::string redact_passwords(const std::string& url, std::vector<std::string>& hidden) {
  // scheme://user:password@host → scheme://user:***@host
  std::string out = url;
  const auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    // As libpq reads it, the user-info runs to an @ before the path: a password may hold ? or #
    // (libpq takes them), and one with an unescaped @ is hidden up to its last @. A ? or # after
    // the first @ starts the query, whose values may hold an @ of their own.
    const auto authority = scheme + 3;
    const auto first_at = out.find('@', authority);
    if (first_at != std::string::npos) {
      const auto end =
          std::min({out.find('/', authority), out.find_first_of("?#", first_at), out.size()});
      const auto at = out.rfind('@', end - 1);
      const auto colon = out.find(':', authority);
      if (at != std::string::npos && at >= first_at && colon < at) hide(out, colon + 1, at, hidden);
    }
  }
  return redact_keyword_passwords(out, hidden);
}

}  // namespace

std::unique_ptr<pqxx::connection> open_connection(const std::string& url,
                                                  const std::string& application_name) {
  auto conn = std::make_unique<pqxx::connection>(with_connection_defaults(url));
  pqxx::nontransaction tx(*conn);
  // What an application's database or role may set for its own sessions is not what Nudge's
  // are written for: built-in names resolve in pg_catalog (a function of the application's
  // first in search_path took the place of now()), statements wait for locks up to
  // statement_timeout (a lock_timeout gave 500s), an idle LISTEN session is not cut off
  // (idle_session_timeout), and transactions are READ COMMITTED, as the lifecycle assumes. No
  // JIT: a plan whose estimate passes its threshold (a disabled scan's cost, a misjudged big
  // table) compiled for 25-35 ms to read a few rows.
  tx.exec("SET TIME ZONE 'UTC'; SET application_name = " + tx.quote(application_name) +
          "; SET search_path = pg_catalog, pg_temp; SET lock_timeout = 0; "
          "SET idle_session_timeout = 0; SET default_transaction_isolation = 'read committed'; "
          "SET jit = off");
  return conn;
}

std::string redact_url(const std::string& url) {
  std::vector<std::string> hidden;
  return redact_passwords(url, hidden);
}

std::string redact(std::string text, const std::string& secret) {
  // An error may quote the password alone (or a URL rebuilt around it): mask that too.
  std::vector<std::string> secrets{secret};
  redact_passwords(secret, secrets);
  return mask_secrets(text, secrets);
}

std::string database_error(const std::exception& e, const std::string& url) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr &&
      std::string_view(e.what()).find("not connected") != std::string_view::npos)
    return "the connection to the database is closed (PostgreSQL restarted or stopped, or the "
           "network dropped)";
  return redact(e.what(), url);
}

std::string sqlstate_of(const pqxx::sql_error& e) {
  if (!e.sqlstate().empty()) return e.sqlstate();
  if (dynamic_cast<const pqxx::insufficient_privilege*>(&e) != nullptr) return "42501";
  return "";
}

std::string primary_message(const std::string& what) {
  std::string m = what;
  for (const std::string prefix : {"ERROR:  ", "FATAL:  "}) {
    if (m.rfind(prefix, 0) == 0) m = m.substr(prefix.size());
  }
  const auto eol = m.find('\n');
  return eol == std::string::npos ? m : m.substr(0, eol);
}

namespace {

class WarningLog final : public pqxx::errorhandler {
 public:
  explicit WarningLog(pqxx::connection_base& conn) : pqxx::errorhandler(conn) {}
  bool operator()(const char message[]) noexcept override {
    try {
      std::string_view text(message);
      constexpr std::string_view kPrefix = "WARNING:  ";
      if (!text.starts_with(kPrefix)) return true;  // NOTICE and below say nothing to act on
      text.remove_prefix(kPrefix.size());
      // The first line: a CONTEXT line may follow with a function's text.
      text = text.substr(0, text.find('\n'));
      log::warn("the database warned", {{"warning", std::string(text)}});
    } catch (...) {  // out of memory: nothing may cross into libpq
    }
    return true;
  }
};

}  // namespace

std::string session_not_kept_hint(const std::exception& e) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  if (sql == nullptr) return "";
  const std::string state = sqlstate_of(*sql);
  if (state != "26000" && state != "42P05") return "";
  return "the database connection did not keep its session (a pooler in transaction mode?): "
         "connect directly or through PgBouncer in session mode (README: Poolers)";
}

std::unique_ptr<pqxx::errorhandler> log_database_warnings(pqxx::connection_base& conn) {
  return std::make_unique<WarningLog>(conn);
}

}  // namespace nudge
