#pragma once
// nudge-api's own connection for tokens, off the request path. It LISTENs on nudge_tokens and
// clears the token cache as soon as a token is revoked, deleted or changed, in any way
// (sql/migrations/0012); it also clears it whenever it has no connection to listen on (at each
// reconnect attempt, at most 5 s apart), since a notification may have been missed then. About
// once a second it writes last_used_at of the tokens the cache saw used (each at most once a
// minute).
//
// It also holds the live stream to what tokens allow now: it ends the streams of a token that no
// longer grants read (revoked, deleted, or its scope read taken away; StreamHub), checking their
// tokens whenever it hears of a change, at each (re)connect, and every `recheck`
// (token_cache_seconds): the bound for a change it did not hear of, or one it heard while a stream
// of that token was being opened.

#include <atomic>
#include <chrono>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "stream_hub.hpp"
#include "token_cache.hpp"

namespace nudge::api {

class TokenWatch {
 public:
  TokenWatch(std::string url, std::string application_name, TokenCache& cache, StreamHub& hub,
             std::chrono::seconds recheck);
  ~TokenWatch();  // stops at once
  TokenWatch(const TokenWatch&) = delete;
  TokenWatch& operator=(const TokenWatch&) = delete;

 private:
  class Receiver;

  void run();
  void connect();
  void disconnect();
  void record_uses();
  // Ends the streams whose token no longer grants read.
  void check_streams();
  // Waits up to `timeout` for the connection's socket (when `fd` >= 0) or for stop.
  void wait(int fd, std::chrono::milliseconds timeout) const;

  std::string url_;
  std::string application_name_;
  TokenCache& cache_;
  StreamHub& hub_;
  const std::chrono::seconds recheck_;
  std::chrono::steady_clock::time_point checked_{};  // the streams' tokens, last
  bool changed_ = false;  // a token change was heard since (by the receiver, on this thread)
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<Receiver> receiver_;
  int stop_fd_ = -1;  // eventfd, written by the destructor
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace nudge::api
