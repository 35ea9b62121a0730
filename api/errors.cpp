#include "errors.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <random>
#include <string_view>

#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/pool.hpp"

namespace nudge::api {
namespace {

// The lifecycle functions raise "<field>: <problem>" (nudge.reject).
std::string field_of(const std::string& message) {
  const auto colon = message.find(": ");
  return colon == std::string::npos ? "" : message.substr(0, colon);
}

// The code of a check's "<field>: <problem>" (22023): the SQL checks say a field is missing or
// unknown in the words api/input.cpp uses, and are answered with the same codes.
std::string code_of_problem(const std::string& message) {
  const auto colon = message.find(": ");
  const std::string problem = colon == std::string::npos ? message : message.substr(colon + 2);
  if (problem.rfind("is not a known field", 0) == 0) return "unknown_field";
  if (problem.rfind("is required", 0) == 0) return "missing_field";
  // A value of the wrong JSON type, as input.cpp's wrong_type answers it (explore32a F8).
  for (const std::string_view wrong_type :
       {"must be a JSON object", "must be a JSON array", "must be a JSON number",
        "must be a string", "must be true or false"}) {
    if (problem.rfind(wrong_type, 0) == 0) return "invalid_type";
  }
  return "invalid_value";
}

// {"error": {"code", "message", "field"}}: the body of every rejection.
nlohmann::json error_body(const std::string& code, const std::string& message,
                          const std::string& field) {
  nlohmann::json error{{"code", code}, {"message", message}};
  error["field"] = field.empty() ? nlohmann::json(nullptr) : nlohmann::json(field);
  return nlohmann::json{{"error", error}};
}

// An error body as text, never failing: bytes of the request quoted in a message that are not
// UTF-8 are replaced (U+FFFD) rather than making the answer itself fail.
std::string body_text(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// 16 hex digits, so a user's report and the log line can be matched.
std::string new_request_id() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(random()));
  return id;
}

// A bug, not the caller's fault: the details go to the log under a request id, the caller gets
// only the id.
void send_internal_error(const httplib::Request& req, httplib::Response& res,
                         const std::string& error, const nlohmann::json& detail = {}) {
  const std::string request_id = new_request_id();
  nlohmann::json fields{
      {"request_id", request_id}, {"method", req.method}, {"path", req.path}, {"error", error}};
  if (detail.is_object()) fields.update(detail);
  log::error("request failed", fields);
  nlohmann::json body =
      error_body("internal", "internal error (request id " + request_id + ")", "");
  body["error"]["request_id"] = request_id;
  res.status = 500;
  res.set_content(body_text(body), "application/json");
}

// "[items[<i>]: ]rule <id>: <field path>: <problem>" (nudge.reject inside a rule's action):
// 422 naming the field (under the item, in a batch) and the rule.
void send_rule_failure(httplib::Response& res, const std::string& message) {
  std::string rest = message;
  std::string item;
  if (rest.rfind("items[", 0) == 0) {
    const auto end = rest.find("]: ");
    if (end != std::string::npos) {
      item = rest.substr(0, end + 1) + ".";
      rest = rest.substr(end + 3);
    }
  }
  nlohmann::json body = error_body("rule_failed", message, "");
  if (rest.rfind("rule ", 0) == 0) {
    const auto colon = rest.find(": ");
    const std::string id = rest.substr(5, colon == std::string::npos ? 0 : colon - 5);
    if (!id.empty() && id.find_first_not_of("0123456789") == std::string::npos)
      body["error"]["rule_id"] = std::stoll(id);
    if (colon != std::string::npos)
      body["error"]["field"] = item + field_of(rest.substr(colon + 2));
  }
  res.status = 422;
  res.set_content(body_text(body), "application/json");
}

}  // namespace

std::string error_json(const std::string& code, const std::string& message,
                       const std::string& field) {
  return body_text(error_body(code, message, field));
}

void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message, const std::string& field,
                const nlohmann::json& details) {
  nlohmann::json body = error_body(code, message, field);
  body["error"].update(details);
  res.status = status;
  res.set_content(body_text(body), "application/json");
}

namespace {

std::atomic<int> statement_timeout_ms{0};

// A 503 the same request may succeed after: nothing was written.
void send_retry_later(httplib::Response& res, const std::string& message,
                      int retry_after_seconds = 1) {
  send_error(res, 503, "unavailable", message);
  res.set_header("Retry-After", std::to_string(retry_after_seconds));
}

// A request the statement timeout cancelled ran that long: sent again at once it would likely
// meet the same limit in the same load, so it is told to wait as long (1 to 60 s).
void send_statement_cancelled(httplib::Response& res) {
  const int ms = statement_timeout_ms.load();
  if (ms <= 0) {
    send_retry_later(res, "an operator cancelled this request; nothing was written; try again");
    return;
  }
  const int seconds = std::clamp((ms + 999) / 1000, 1, 60);
  send_retry_later(res,
                   "the database cancelled this request after [database] statement_timeout_ms (" +
                       std::to_string(ms) +
                       " ms), or an operator did; nothing was written; sent again at once it may "
                       "meet the same limit: try again after Retry-After (" +
                       std::to_string(seconds) + " s), or send less at once (a smaller batch)",
                   seconds);
}

// A request whose database connection broke (the server restarted, a connection was
// terminated) is logged: it was answered 503 without a word (explore16a #10). At most one line
// every 10 s, with how many more there were, so an outage does not flood the log.
void log_lost_connection(const httplib::Request& req, const std::string& error) {
  using Clock = std::chrono::steady_clock;
  static std::atomic<long long> next_line_ms{0};
  static std::atomic<long long> unlogged{0};
  const long long now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
          .count();
  long long due = next_line_ms.load();
  if (now_ms < due || !next_line_ms.compare_exchange_strong(due, now_ms + 10000)) {
    ++unlogged;
    return;
  }
  log::warn("a request lost its database connection and was answered 503 (try again)",
            {{"method", req.method},
             {"path", req.path},
             {"error", primary_message(error)},
             {"more_since_last_line", unlogged.exchange(0)}});
}

}  // namespace

void set_statement_timeout_ms(int ms) {
  statement_timeout_ms.store(ms);
}

void send_exception(const httplib::Request& req, httplib::Response& res, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const ApiError& e) {
    send_error(res, e.status(), e.code(), e.what(), e.field(), e.details());
  } catch (const PoolTimeout&) {
    send_retry_later(res, "the service is busy; try again");
  } catch (const pqxx::broken_connection& e) {
    log_lost_connection(req, e.what());
    send_retry_later(res, "the database is unreachable; try again");
  } catch (const pqxx::statement_completion_unknown&) {
    // The connection broke during a commit: written or not, nobody can say.
    send_retry_later(res,
                     "the database cannot tell whether this request was written; check before "
                     "trying again (a key makes trying again safe)");
  } catch (const pqxx::deadlock_detected&) {
    // libpqxx 6 does not derive these rollbacks from sql_error, so the SQLSTATE check below
    // never sees them.
    send_retry_later(res, "a deadlock with another transaction; nothing was written; try again");
  } catch (const pqxx::transaction_rollback&) {
    send_retry_later(res,
                     "a conflict with another transaction (serialization failure); nothing was "
                     "written; try again");
  } catch (const pqxx::sql_error& e) {
    const std::string state = sqlstate_of(e);
    const std::string message = primary_message(e.what());
    if (state == "22023") {
      send_error(res, 400, code_of_problem(message), message, field_of(message));
    } else if (state == "NU404") {
      send_error(res, 404, "not_found", message);
    } else if (state == "NU409") {
      send_error(res, 409, "conflict", message);
    } else if (state == "NU422") {
      send_rule_failure(res, message);
    } else if (state.rfind("23", 0) == 0 || state.rfind("22", 0) == 0) {
      // A constraint or a value the checks above let through: still the caller's input.
      send_error(res, 400, "invalid_value", message);
    } else if (state == "55P03") {
      // [database] lock_timeout_ms: waited that long for a row another transaction holds.
      send_retry_later(res,
                       "another transaction holds a row this request needs (an application's "
                       "open transaction?); nothing was written; try again");
    } else if (state == "57014") {
      send_statement_cancelled(res);
    } else {
      nlohmann::json fields = {{"sqlstate", state}};
      if (const std::string hint = session_not_kept_hint(e); !hint.empty()) fields["hint"] = hint;
      send_internal_error(req, res, message, fields);
    }
  } catch (const std::exception& e) {
    send_internal_error(req, res, e.what());
  } catch (...) {
    send_internal_error(req, res, "an exception that is not a std::exception");
  }
}

}  // namespace nudge::api
