#pragma once
// Shared by the REST API tests: a fresh database, a real nudge-api process on a free loopback
// port pointed at it, and an HTTP client.

#include <httplib.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "support/processes.hpp"
#include "support/test_database.hpp"

namespace nudge::test {

using namespace std::chrono_literals;
using nlohmann::json;

// An answer: status, headers and parsed body (null when the body is not JSON).
struct Reply {
  int status = 0;
  httplib::Headers headers;
  json body;
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  std::string error_field() const {
    return body.contains("error") && body["error"]["field"].is_string()
               ? body["error"]["field"].get<std::string>()
               : "";
  }
};

// A request's Authorization header for `token`.
inline httplib::Headers bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// The methods a route can be registered for (OpenAPI path items name them in lower case).
inline const std::vector<std::string> kRouteMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};

inline std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "/v1/reminders/{id}" with the id, and the other parameters of the OpenAPI paths, filled in.
inline std::string concrete_path(std::string path, long id) {
  const std::map<std::string, std::string> values = {{"{id}", std::to_string(id)},
                                                     {"{key}", "some-flag"},
                                                     {"{entity_type}", "user"},
                                                     {"{entity_id}", "1"},
                                                     {"{channel}", "email"}};
  for (const auto& [name, value] : values) {
    const auto at = path.find(name);
    if (at != std::string::npos) path.replace(at, name.size(), value);
  }
  // A stream answered 200 never ends: a bad filter shows that the route answers.
  if (path == "/v1/stream") path += "?types=none";
  return path;
}

class ApiTest : public DatabaseTest {
 protected:
  // `settings`: NUDGE_* variables for nudge-api beyond the database, port and body limit. Loopback
  // webhook targets are open to the SSRF guard, and auth is
  // off (on loopback, as scripts/run.sh runs it) unless they say otherwise: the suites that
  // test tokens turn it on (auth_test.cpp, audit_test.cpp).
  explicit ApiTest(const std::map<std::string, std::string>& settings = {}) {
    log_ = std::filesystem::temp_directory_path() / ("nudge-api-" + db_.name() + ".log");
    std::map<std::string, std::string> env = settings;
    env.insert({"NUDGE_API_AUTH", "off"});
    env.insert({kAllowPrivate, kLoopbackNetworks});
    env["NUDGE_DATABASE_URL"] = db_.url();
    env["NUDGE_API_MAX_BODY_BYTES"] = "262144";
    // Up when this nudge-api says it listens and /health answers: another test's process can take
    // the free port first ("Address already in use"), and its /health answered for this one, whose
    // requests then found no server. Such a start is tried again on another port.
    bool up = false;
    for (int start = 0; start < 3 && !up; ++start) {
      port_ = free_tcp_port();
      env["NUDGE_API_PORT"] = std::to_string(port_);
      api_ = std::make_unique<ChildProcess>(std::vector<std::string>{program("nudge-api")}, env,
                                            log_.string());
      client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
      client_->set_connection_timeout(5);
      client_->set_read_timeout(30);
      wait_until(
          60s,
          [&] {
            if (!api_->running()) return true;
            if (api_->log().find(R"("msg":"listening")") == std::string::npos) return false;
            auto r = client_->Get("/health");
            return r && r->status == 200;
          },
          20ms);
      up = api_->running();
    }
    if (!up) ADD_FAILURE() << "nudge-api did not come up:\n" << api_->log();
  }
  ~ApiTest() override {
    if (!HasFailure()) {
      api_->remove_logs();
      // What a worker a test started logged beside the API's log.
      std::error_code ignored;
      std::filesystem::remove(log_.string() + ".worker", ignored);
      std::filesystem::remove(log_.string() + ".worker.err", ignored);
    }
    api_.reset();
  }

  // The outcome of reminder `id`'s first recorded occurrence once there is one (a worker a test
  // started records it); nullopt after 60 s.
  std::optional<std::string> first_outcome(long id) {
    std::optional<std::string> outcome;
    wait_until(60s, [&] {
      const pqxx::result r = sql("SELECT outcome FROM nudge.executions WHERE reminder_id = $1", id);
      if (!r.empty()) outcome = r[0][0].as<std::string>();
      return !r.empty();
    });
    return outcome;
  }

  static Reply to_reply(const httplib::Result& r) {
    Reply out;
    if (!r) return out;
    out.status = r->status;
    out.headers = r->headers;
    out.body = json::parse(r->body, nullptr, false);
    return out;
  }
  Reply get(const std::string& path) { return to_reply(client_->Get(path.c_str())); }
  Reply post(const std::string& path, const std::string& body = "") {
    return to_reply(client_->Post(path.c_str(), body, "application/json"));
  }
  Reply put(const std::string& path, const std::string& body) {
    return to_reply(client_->Put(path.c_str(), body, "application/json"));
  }
  Reply patch(const std::string& path, const std::string& body) {
    return to_reply(client_->Patch(path.c_str(), body, "application/json"));
  }
  Reply send(const std::string& method, const std::string& path, const std::string& body = "") {
    return send_with({}, method, path, body);
  }
  // The same with these headers (e.g. bearer(token)).
  Reply send_with(const httplib::Headers& headers, const std::string& method,
                  const std::string& path, const std::string& body = "") {
    const char* type = "application/json";
    if (method == "GET") return to_reply(client_->Get(path.c_str(), headers));
    if (method == "POST") return to_reply(client_->Post(path.c_str(), headers, body, type));
    if (method == "PUT") return to_reply(client_->Put(path.c_str(), headers, body, type));
    if (method == "PATCH") return to_reply(client_->Patch(path.c_str(), headers, body, type));
    if (body.empty()) return to_reply(client_->Delete(path.c_str(), headers));
    return to_reply(client_->Delete(path.c_str(), headers, body, type));
  }

  // A new token for this test's database, made with `nudge-api token create`.
  std::string make_token(const std::string& name, const std::string& scopes) {
    const Finished run = token_command(db_.url(), {"create", "--name", name, "--scopes", scopes});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.out.substr(0, run.out.find('\n'));
  }

  // A one_time reminder due in an hour for entity `id`; returns its id.
  long create_one(const std::string& id, const std::string& extra = "") {
    const auto r = post("/v1/reminders",
                        R"({"entity_type":"user","entity_id":")" + id +
                            R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
                            R"("run_at":"2099-01-01T00:00:00Z")" +
                            extra + "}");
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.body.value("id", 0L);
  }

  int port_ = 0;
  std::filesystem::path log_;
  std::unique_ptr<ChildProcess> api_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace nudge::test
