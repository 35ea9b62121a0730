#pragma once
// A real HTTP server on loopback that plays a webhook receiver in tests: it records every
// request (any method) and answers as the test scripts it, path by path.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nudge::test {

struct ReceivedRequest {
  std::string method;
  std::string path;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
  std::chrono::steady_clock::time_point at;
};

class WebhookReceiver {
 public:
  // How a path answers: the HTTP status for the n-th request to that path (1-based). It may
  // block (a hanging receiver) until the receiver stops.
  using Script = std::function<int(int n)>;

  // On `port` (127.0.0.1), or any free one with 0.
  explicit WebhookReceiver(int port = 0);
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  // What a path answers in its body (default "ok", or "not now" for a status of 300 or more).
  using Responder = std::function<std::string(const ReceivedRequest&)>;

  // Scripts must be set before the first request to that path; unscripted paths answer 200.
  void on(const std::string& path, Script script);
  void respond(const std::string& path, Responder responder);
  // Every answer of the path carries this header too (a rate limit's Retry-After).
  void header(const std::string& path, const std::string& name, const std::string& value);
  // The path answers 307 with this Location (a receiver sending the worker elsewhere).
  void redirect(const std::string& path, const std::string& location);
  std::string url(const std::string& path) const;
  std::vector<ReceivedRequest> requests() const;
  std::vector<ReceivedRequest> requests_to(const std::string& path) const;
  // True once the receiver is shutting down (for scripts that block).
  bool stopping() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// HMAC-SHA256(key, message) as lower-case hex, computed here with OpenSSL (independently of
// the worker's code), and the README's verification recipe for Nudge-Signature.
std::string hmac_sha256_hex(const std::string& key, const std::string& message);
bool nudge_signature_verifies(const std::string& header, const std::string& secret,
                              const std::string& body);

}  // namespace nudge::test
