#pragma once
// A real SMTP server on loopback for tests: Debian's aiosmtpd, run by a small Python script
// that parses every message it accepts with Python's own email package and writes what it found
// (envelope, decoded headers, decoded body, the raw text) as one JSON line.

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/processes.hpp"

namespace nudge::test {

class SmtpTestServer {
 public:
  // aiosmtpd is Debian's python3-aiosmtpd, importable by the system interpreter (a python3
  // first on PATH, e.g. pyenv's, may not have it).
  static constexpr const char* kPython = "/usr/bin/python3";

  // Starts a server on a free loopback port, its script, messages and log in `dir`. Mode
  // "accept" takes every message; "reject" answers every RCPT with 550; "greylist" with 451;
  // "starttls" takes every message after STARTTLS (required), its certificate and key
  // dir/relay-cert.pem and dir/relay-key.pem; "starttls-auth" as it, offering AUTH after it
  // (user "user", password "hunter2"); "starttls-noauth" as it, never offering AUTH. Each
  // message's record says whether its session `authenticated`.
  SmtpTestServer(const std::filesystem::path& dir, const std::string& mode);
  SmtpTestServer(const SmtpTestServer&) = delete;
  SmtpTestServer& operator=(const SmtpTestServer&) = delete;

  // Waits until the server accepts connections; false (with the reason in `why`) if it died or
  // did not come up in time.
  bool wait_ready(std::string& why);

  int port() const { return port_; }
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }

  // Every message the server accepted so far, in order (a line still being written is left
  // for the next call).
  std::vector<nlohmann::json> messages() const;

  std::string log() const { return process_->log(); }

 private:
  int port_;
  std::string messages_path_;
  std::unique_ptr<ChildProcess> process_;
};

// The first value of header `name` (lower case) in a message from SmtpTestServer::messages(),
// or "<missing name>".
std::string smtp_header(const nlohmann::json& message, const std::string& name);

}  // namespace nudge::test
