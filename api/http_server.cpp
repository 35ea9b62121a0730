#include "http_server.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <functional>
#include <memory>
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
// The status the connection refused the request being served with (Connection::begin_request),
// or 0: httplib answers it before reading a body or routing.
thread_local int t_refusal = 0;

std::string overloaded_answer(const std::string& body) {
  return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

HttpServer::HttpServer(Settings settings) : settings_(std::move(settings)) {
  parser_.set_payload_max_length(settings_.max_body_bytes);
  parser_.set_pre_routing_handler(
      [max = settings_.max_body_bytes](const httplib::Request& req, httplib::Response& res) {
        if (t_refusal != 0) {
          res.status = t_refusal;  // the router's error handler writes the body
          return httplib::Server::HandlerResponse::Handled;
        }
        // httplib hands its own, non-const request to the handler as const.
        return settle_request_head(const_cast<httplib::Request&>(req), res, max);
      });
  // Only what the answers' Keep-Alive header says: the connection layer keeps these.
  parser_.set_keep_alive_timeout(settings_.keep_alive.count());
  parser_.set_keep_alive_max_count(kMaxRequestsPerConnection);
}

HttpServer::~HttpServer() = default;

void HttpServer::keep_as_stream(std::shared_ptr<Outbox> outbox) {
  t_stream = std::move(outbox);
}

bool HttpServer::bind(const std::string& host, int port) {
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
  if (!parser_.bind_to_port(host, port) || ::listen(listen_fd, SOMAXCONN) != 0) return false;
  ConnectionLoop::Settings loop;
  loop.max_connections = settings_.max_connections;
  loop.keep_alive = settings_.keep_alive;
  loop.request_timeout = settings_.request_timeout;
  loop.limits = {settings_.request_timeout, settings_.max_body_bytes};
  loop.overloaded = overloaded_answer(settings_.overloaded_body);
  loop.tls = settings_.tls;
  loop_ = std::make_unique<ConnectionLoop>(listen_fd, std::move(loop), [this](Connection& c) {
    ++queued_;
    threads_->enqueue([this, &c] {
      --queued_;
      serve_connection(c);
    });
  });
  return true;
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
    for (;;) {
      t_refusal = c.begin_request();
      const bool close =
          loop_->stopping() || c.must_close() || c.requests() >= kMaxRequestsPerConnection;
      bool client_closes = false;
      t_stream.reset();
      const bool answered = parser_.process_request(c, close, client_closes, kNoSetup);
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
      if (!answered || !clean || close || client_closes) return loop_->give_back(c, false);
      if (c.request_ready()) continue;
      char scratch[kNextRequestReadBytes];
      if (queued_.load() > 0 || loop_->stopping() ||
          !c.await_input(kNextRequestWait, scratch, sizeof scratch))
        return loop_->give_back(c, !c.input_ended());
      if (!c.request_ready()) return loop_->give_back(c, !c.input_ended());
    }
  } catch (const std::exception& e) {
    t_stream.reset();
    log::error("serving a connection failed", {{"error", e.what()}});
    loop_->give_back(c, false);
  }
}

}  // namespace nudge::api
