#include "http_server.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include "nudge/log.hpp"
#include "request_head.hpp"

namespace nudge::api {
namespace {

// Then the answer says Connection: close, so that long-lived clients are spread again over the
// instances behind a load balancer (nginx's keepalive_requests default).
constexpr std::size_t kMaxRequestsPerConnection = 1000;
// A busy client's next request usually follows its answer within a round trip: waiting this
// long for it on the request thread, while no other connection waits for one, saves the trip
// through the loop (two thread wake-ups, each a scheduling delay on a loaded machine).
constexpr auto kNextRequestWait = std::chrono::milliseconds(2);
constexpr std::size_t kNextRequestReadBytes = 16384;

// Set by keep_as_stream while the request thread serves the request whose answer streams.
thread_local std::shared_ptr<Outbox> t_stream;
// Set by hold_for_request: dropped once the request being served is answered.
thread_local std::shared_ptr<void> t_held;
// The connection this thread serves a request from.
thread_local Connection* t_connection = nullptr;

// A complete answer that closes the connection, for those the connection loop sends itself.
std::string closing_answer(std::string_view status, const std::string& body,
                           std::string_view headers = "") {
  return "HTTP/1.1 " + std::string(status) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n" + std::string(headers) + "Connection: close\r\n\r\n" + body;
}

}  // namespace

HttpServer::HttpServer(Settings settings) : settings_(std::move(settings)) {
  parser_.set_payload_max_length(settings_.max_body_bytes);
  // httplib hands its own, non-const request to the handlers as const.
  parser_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return before_body(const_cast<httplib::Request&>(req), res, true);
  });
  // Told to go on only once the head is settled. A refused client may send its body anyway, or
  // not: the connection closes after the answer rather than guess where the next request starts.
  parser_.set_expect_100_continue_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (before_body(const_cast<httplib::Request&>(req), res, false) ==
            httplib::Server::HandlerResponse::Unhandled)
          return 100;
        if (t_connection != nullptr) t_connection->refuse_unread_body();
        if (!res.has_header("Connection")) res.set_header("Connection", "close");
        // httplib sizes this answer only when its error handler writes the body.
        if (!res.body.empty()) res.set_header("Content-Length", std::to_string(res.body.size()));
        return res.status;
      });
  // Every answer: never sniffed into another type; API data is not kept by caches on the way
  // (the dashboard's files say their own); over TLS, browsers keep to HTTPS.
  parser_.set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.has_header("X-Content-Type-Options"))
      res.set_header("X-Content-Type-Options", "nosniff");
    if (!res.has_header("Cache-Control")) res.set_header("Cache-Control", "no-store");
    // gzip or not depends on it: a cache keeps the two forms apart.
    res.set_header("Vary", "Accept-Encoding");
    if (settings_.tls != nullptr) res.set_header("Strict-Transport-Security", "max-age=31536000");
    // httplib says it to every HEAD, while every Range is ignored (ignore_range).
    res.headers.erase("Accept-Ranges");
    // Which RFC 9110 forbids in a 204 (section 8.6); httplib sets it on every answer.
    if (res.status == 204) res.headers.erase("Content-Length");
  });
  // Only what the answers' Keep-Alive header says: the connection layer keeps these.
  parser_.set_keep_alive_timeout(settings_.keep_alive.count());
  parser_.set_keep_alive_max_count(kMaxRequestsPerConnection);
}

HttpServer::~HttpServer() = default;

httplib::Server::HandlerResponse HttpServer::before_body(httplib::Request& req,
                                                         httplib::Response& res, bool decode) {
  using Result = httplib::Server::HandlerResponse;
  settle_absolute_form(req);
  settle_accept_encoding(req);
  ignore_range(req);
  Connection* const c = t_connection;
  // httplib closes after the answer on the exact "close" only, read before this runs.
  if (settle_connection(req) && c != nullptr) c->close_after_answer();
  // First, before a 413 or 415 whose body would be dropped as it arrives.
  if (body_gate_ && c != nullptr && (c->body_pending() > 0 || c->chunked_body_pending()) &&
      !body_gate_(req, res)) {
    c->refuse_unread_body();
    res.set_header("Connection", "close");
    return Result::Handled;
  }
  if (decode && c != nullptr && c->chunked_body()) {
    std::size_t size = 0;
    if (const int refusal = c->read_chunked_body(size); refusal != 0) {
      res.status = refusal;  // the router's error handler writes the body
      if (c->must_close()) {
        // The client may still be sending (its request said Connection: close): what comes is
        // dropped until it has read the answer, or closing would reset the connection first.
        if (refusal == 413) c->refuse_unread_body();
        res.set_header("Connection", "close");
      }
      return Result::Handled;
    }
    // httplib reads it as any other body.
    req.headers.erase("Transfer-Encoding");
    req.set_header("Content-Length", std::to_string(size));
  }
  return settle_request_head(req, res, settings_.max_body_bytes);
}

void HttpServer::keep_as_stream(std::shared_ptr<Outbox> outbox) {
  t_stream = std::move(outbox);
}

void HttpServer::hold_for_request(std::shared_ptr<void> held) {
  t_held = std::move(held);
}

std::optional<std::string> HttpServer::bind(const std::string& host, int port) {
  // httplib resolves the host and binds; its listen backlog (5) drops connections when many
  // clients connect at once, so the socket listens again with a real one. Accepted sockets
  // inherit TCP_NODELAY: the answer goes out at once, without waiting for the client's ACK.
  int listen_fd = -1;
  parser_.set_socket_options([&listen_fd](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    listen_fd = fd;
  });
  errno = 0;
  if (!parser_.bind_to_port(host, port) || ::listen(listen_fd, SOMAXCONN) != 0) {
    // httplib says only that it failed: the bind's errno says why (none: the host did not
    // resolve to an address).
    return errno != 0 ? std::string(std::strerror(errno))
                      : "the host does not resolve to an address of this machine";
  }
  ConnectionLoop::Settings loop;
  loop.max_connections = settings_.max_connections;
  loop.keep_alive = settings_.keep_alive;
  loop.request_timeout = settings_.request_timeout;
  loop.limits = {settings_.request_timeout, settings_.max_body_bytes};
  loop.overloaded =
      closing_answer("503 Service Unavailable", settings_.overloaded_body, "Retry-After: 1\r\n");
  loop.head_too_large =
      closing_answer("431 Request Header Fields Too Large", settings_.head_too_large_body);
  loop.head_malformed = closing_answer("400 Bad Request", settings_.head_malformed_body);
  loop.timed_out = closing_answer("408 Request Timeout", settings_.timed_out_body);
  loop.stopping =
      closing_answer("503 Service Unavailable", settings_.stopping_body, "Retry-After: 1\r\n");
  loop.tls = settings_.tls;
  loop_ = std::make_unique<ConnectionLoop>(listen_fd, std::move(loop), [this](Connection& c) {
    ++queued_;
    threads_->enqueue([this, &c] {
      --queued_;
      serve_connection(c);
    });
  });
  return std::nullopt;
}

void HttpServer::serve() {
  threads_ = std::make_unique<httplib::ThreadPool>(static_cast<std::size_t>(settings_.threads));
  loop_->run();
  threads_->shutdown();  // every connection is closed: the threads are idle
}

void HttpServer::stop() {
  if (loop_) loop_->stop();
}

// One request after another while complete ones are buffered (or arrive within kNextRequestWait
// while no other connection waits); then the connection goes back to the loop, which waits for the
// next one without holding this thread.
void HttpServer::serve_connection(Connection& c) {
  static const std::function<void(httplib::Request&)> kNoSetup;
  try {
    t_connection = &c;
    for (;;) {
      c.begin_request();
      const bool close =
          loop_->stopping() || c.must_close() || c.requests() >= kMaxRequestsPerConnection;
      bool client_closes = false;
      t_stream.reset();
      const bool answered = parser_.process_request(c, close, client_closes, kNoSetup);
      t_held.reset();
      const bool clean = c.end_request();
      if (auto stream = std::exchange(t_stream, nullptr)) {
        if (!clean || loop_->stopping()) {
          // Its client saw a head (often a 200) for a stream that ends here: say why.
          log::warn("a stream was closed as it began",
                    {{"reason", clean ? "the server is stopping" : "its head could not be sent"}});
          return loop_->give_back(c, false);
        }
        return loop_->keep_streaming(c, std::move(stream));
      }
      if (!answered || !clean || close || client_closes || c.must_close())
        return loop_->give_back(c, false);
      // A head refused unread (431, 400) is answered by the loop.
      if (c.request_ready()) {
        if (c.head_refused()) return loop_->give_back(c, true);
        continue;
      }
      char scratch[kNextRequestReadBytes];
      if (queued_.load() > 0 || loop_->stopping() ||
          !c.await_input(kNextRequestWait, scratch, sizeof scratch))
        return loop_->give_back(c, !c.input_ended());
      if (!c.request_ready() || c.head_refused()) return loop_->give_back(c, !c.input_ended());
    }
  } catch (const std::exception& e) {
    t_stream.reset();
    t_held.reset();
    log::error("serving a connection failed", {{"error", e.what()}});
    loop_->give_back(c, false);
  }
}

}  // namespace nudge::api
