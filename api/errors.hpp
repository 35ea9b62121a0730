#pragma once
// Every rejection the API gives: an HTTP status and {"error": {"code", "message", "field"}}.

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace nudge::api {

class ApiError : public std::runtime_error {
 public:
  // `details`: more members of the error object, e.g. {"unparsed": [...]}.
  ApiError(int status, std::string code, const std::string& message, std::string field = "",
           nlohmann::json details = nlohmann::json::object())
      : std::runtime_error(message),
        status_(status),
        code_(std::move(code)),
        field_(std::move(field)),
        details_(std::move(details)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }
  const std::string& field() const { return field_; }
  const nlohmann::json& details() const { return details_; }

 private:
  int status_;
  std::string code_;
  std::string field_;
  nlohmann::json details_;
};

// 400 naming the field, the usual rejection of bad input.
inline ApiError bad_field(const std::string& field, const std::string& code,
                          const std::string& message) {
  return ApiError(400, code, field + ": " + message, field);
}

// The body of every rejection, as JSON text (also the 503 of a client past the connection limit,
// which is answered before any request is read).
std::string error_json(const std::string& code, const std::string& message,
                       const std::string& field = "");

// Writes the error body (with `details` merged into its error object) and status.
void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message, const std::string& field = "",
                const nlohmann::json& details = nlohmann::json::object());

// The API's [database] statement_timeout_ms, so that a request cancelled by it is told to wait
// as long before sending it again (explore21a #6: "Retry-After: 1" invited the same costly
// batch at once). Set once at start-up; 0 (no limit) until then.
void set_statement_timeout_ms(int ms);

// Turns whatever a handler threw into an answer: ApiError as is; the lifecycle functions'
// SQLSTATEs (22023 bad value with its field, NU404, NU409) as 400/404/409; a saturated pool, a
// lost database or a transaction PostgreSQL gave up on as 503 (try again). Anything else is a
// bug: logged with a new request id and answered 500 with that id and no internals.
void send_exception(const httplib::Request& req, httplib::Response& res, std::exception_ptr error);

}  // namespace nudge::api
