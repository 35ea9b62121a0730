#pragma once
// nudge-api's own connection for tokens, off the request path. It LISTENs on nudge_tokens and
// clears the token cache as soon as a token is revoked, deleted or changed, in any way
// (sql/migrations/0012); it also clears it whenever it has no connection to listen on (at each
// reconnect attempt, at most 5 s apart), since a notification may have been missed then. About
// once a second it writes last_used_at of the tokens the cache saw used (each at most once a
// minute).

#include <atomic>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "token_cache.hpp"

namespace nudge::api {

class TokenWatch {
 public:
  TokenWatch(std::string url, std::string application_name, TokenCache& cache);
  ~TokenWatch();  // stops at once
  TokenWatch(const TokenWatch&) = delete;
  TokenWatch& operator=(const TokenWatch&) = delete;

 private:
  class Receiver;

  void run();
  void connect();
  void disconnect();
  void record_uses();
  // Waits up to `timeout` for the connection's socket (when `fd` >= 0) or for stop.
  void wait(int fd, std::chrono::milliseconds timeout) const;

  std::string url_;
  std::string application_name_;
  TokenCache& cache_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<Receiver> receiver_;
  int stop_fd_ = -1;  // eventfd, written by the destructor
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace nudge::api
