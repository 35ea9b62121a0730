#pragma once
// nudge-api's HTTP server: httplib parses each request, routes it and writes the answer; the
// connection layer (ConnectionLoop, Connection) owns the sockets. A request thread is busy only
// while it serves a complete request (and, while no other connection waits for one, 2 ms more
// for the same client's next request), so idle keep-alive clients and clients still sending
// cost no thread, up to max_connections open at once; a request without a body length has an
// empty body (RFC 9112 section 6.3).

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "connection_loop.hpp"

namespace nudge::api {

class HttpServer {
 public:
  struct Settings {
    int threads = 16;  // requests served at once
    std::size_t max_connections = 10000;
    std::chrono::seconds keep_alive{5};
    std::chrono::milliseconds request_timeout{10000};
    std::size_t max_body_bytes = 1048576;
    std::string overloaded_body;  // JSON body of the 503 a client past max_connections gets
    // JSON bodies of the 431 a head over 64 KiB gets and of the 408 a request that did not arrive
    // by its deadline gets (each answered without httplib, and the connection closed).
    std::string head_too_large_body;
    std::string head_malformed_body;  // of the 400 a head that cannot be parsed gets, likewise
    std::string timed_out_body;
    std::string stopping_body;  // JSON body of the 503 a request still arriving at the stop gets
    SSL_CTX* tls = nullptr;     // HTTPS only, sessions made from this (tls_context.hpp), which
                                // must outlive the server
  };

  explicit HttpServer(Settings settings);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Where routes and the error handler are registered.
  httplib::Server& routes() { return parser_; }
  // Decides, from its head, whether a request whose body has not all arrived (over 64 KiB, or
  // awaited with Expect: 100-continue) may be served: false refuses it with the answer it wrote
  // in `res`, and the connection closes without the body being read. So a caller without a
  // token for the route cannot make the server read a large body, nor hold a request thread
  // while it trickles in. Without one, every such request is read.
  using BodyGate = std::function<bool(const httplib::Request&, httplib::Response&)>;
  void set_body_gate(BodyGate gate) { body_gate_ = std::move(gate); }
  // Listens on host:port; why not when it cannot ("Address already in use").
  std::optional<std::string> bind(const std::string& host, int port);
  // Serves until stop(); requests in flight finish, then it returns. Call bind() first.
  void serve();
  // From any thread.
  void stop();
  std::size_t max_connections() const { return settings_.max_connections; }
  // For metrics, from any thread (0 before bind()): see ConnectionLoop.
  std::size_t open_connections() const { return loop_ ? loop_->open_count() : 0; }
  std::uint64_t refused_connections() const { return loop_ ? loop_->refused_count() : 0; }

  // From a route's content provider, on the request thread serving it: once what the answer
  // wrote is sent, its connection stays open as a stream fed by `outbox`, kept by the loop
  // without a thread (the provider then returns false, ending httplib's part of the answer).
  static void keep_as_stream(std::shared_ptr<Outbox> outbox);
  // Keeps `held` until the request being served is answered (a slot it holds meanwhile).
  static void hold_for_request(std::shared_ptr<void> held);
  // From any thread: outboxes have more to send.
  void wake_streams() {
    if (loop_) loop_->wake_streams();
  }

 private:
  // httplib's parser, router and answer writer, driven one request at a time.
  class Parser : public httplib::Server {
   public:
    using httplib::Server::process_request;
  };

  void serve_connection(Connection& c);
  // What is settled from the head before the body is read (the body gate; with `decode`, a
  // chunked body read and decoded; then request_head.hpp): Handled with the refusal in `res`.
  httplib::Server::HandlerResponse before_body(httplib::Request& req, httplib::Response& res,
                                               bool decode);

  Settings settings_;
  Parser parser_;
  BodyGate body_gate_;
  std::unique_ptr<ConnectionLoop> loop_;
  std::unique_ptr<httplib::ThreadPool> threads_;
  std::atomic<int> queued_{0};  // connections handed to threads_ and not yet taken up
};

}  // namespace nudge::api
