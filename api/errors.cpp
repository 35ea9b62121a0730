#include "errors.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "nudge/log.hpp"

namespace nudge::api {
namespace {

// "ERROR:  run_at: is required\nCONTEXT: ..." -> "run_at: is required".
std::string primary_message(const std::string& what) {
  std::string m = what;
  for (const std::string prefix : {"ERROR:  ", "FATAL:  "}) {
    if (m.rfind(prefix, 0) == 0) m = m.substr(prefix.size());
  }
  const auto eol = m.find('\n');
  return eol == std::string::npos ? m : m.substr(0, eol);
}

// The lifecycle functions raise "<field>: <problem>" (nudge_reject).
std::string field_of(const std::string& message) {
  const auto colon = message.find(": ");
  return colon == std::string::npos ? "" : message.substr(0, colon);
}

}  // namespace

void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message, const std::string& field) {
  nlohmann::json error{{"code", code}, {"message", message}};
  error["field"] = field.empty() ? nlohmann::json(nullptr) : nlohmann::json(field);
  res.status = status;
  res.set_content(nlohmann::json{{"error", error}}.dump(), "application/json");
}

void send_exception(httplib::Response& res, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const ApiError& e) {
    send_error(res, e.status(), e.code(), e.what(), e.field());
  } catch (const pqxx::broken_connection&) {
    send_error(res, 503, "unavailable", "the database is unreachable; try again");
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    const std::string message = primary_message(e.what());
    if (state == "22023") {
      send_error(res, 400, "invalid_value", message, field_of(message));
    } else if (state == "NU404") {
      send_error(res, 404, "not_found", message);
    } else if (state == "NU409") {
      send_error(res, 409, "conflict", message);
    } else if (state.rfind("23", 0) == 0 || state.rfind("22", 0) == 0) {
      // A constraint or a value the checks above let through: still the caller's input.
      send_error(res, 400, "invalid_value", message);
    } else if (state == "40001" || state == "40P01" || state == "57014") {
      send_error(res, 503, "unavailable", "the database is busy; try again");
    } else {
      log::error("database error", {{"sqlstate", state}, {"error", message}});
      send_error(res, 500, "internal", "internal error");
    }
  } catch (const std::exception& e) {
    log::error("request failed", {{"error", e.what()}});
    send_error(res, 503, "unavailable", "the service cannot answer now; try again");
  }
}

}  // namespace nudge::api
