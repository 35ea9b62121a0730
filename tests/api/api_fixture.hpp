#pragma once
// Shared by the REST API tests: a fresh database, a real nudge-api process on a free loopback
// port pointed at it, and an HTTP client.

#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "support/processes.hpp"
#include "support/test_database.hpp"

namespace nudge::test {

using namespace std::chrono_literals;
using nlohmann::json;

// An answer: status and parsed body (null when the body is not JSON).
struct Reply {
  int status = 0;
  json body;
  std::string error_field() const {
    return body.contains("error") && body["error"]["field"].is_string()
               ? body["error"]["field"].get<std::string>()
               : "";
  }
};

class ApiTest : public DatabaseTest {
 protected:
  // `settings`: NUDGE_* variables for nudge-api beyond the database, port, body limit and
  // loopback targets; they win over those.
  explicit ApiTest(const std::map<std::string, std::string>& settings = {})
      : port_(free_tcp_port()) {
    log_ = std::filesystem::temp_directory_path() / ("nudge-api-" + db_.name() + ".log");
    std::map<std::string, std::string> env{{"NUDGE_DATABASE_URL", db_.url()},
                                           {"NUDGE_API_PORT", std::to_string(port_)},
                                           {"NUDGE_API_MAX_BODY_BYTES", "262144"},
                                           {kAllowPrivate, kLoopbackNetworks}};
    for (const auto& [name, value] : settings) env[name] = value;
    api_ = std::make_unique<ChildProcess>(std::vector<std::string>{program("nudge-api")}, env,
                                          log_.string());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_connection_timeout(5);
    client_->set_read_timeout(30);
    const bool up = wait_until(
        60s,
        [&] {
          auto r = client_->Get("/health");
          return r && r->status == 200;
        },
        20ms);
    if (!up) ADD_FAILURE() << "nudge-api did not come up:\n" << api_->log();
  }
  ~ApiTest() override {
    const bool keep_logs = HasFailure();
    if (!keep_logs) api_->remove_logs();
    api_.reset();
  }

  static Reply to_reply(const httplib::Result& r) {
    Reply out;
    if (!r) return out;
    out.status = r->status;
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
    if (method == "GET") return get(path);
    if (method == "POST") return post(path, body);
    if (method == "PUT") return put(path, body);
    if (method == "PATCH") return patch(path, body);
    return to_reply(client_->Delete(path.c_str()));
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

  int port_;
  std::filesystem::path log_;
  std::unique_ptr<ChildProcess> api_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace nudge::test
