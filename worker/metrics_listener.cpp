#include "metrics_listener.hpp"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "deadline_stream.hpp"
#include "nudge/database.hpp"
#include "nudge/database_gauges.hpp"
#include "nudge/log.hpp"

namespace nudge {
namespace {

// The server's own reason for refusing a connection ("too many connections for role \"x\"",
// "the database system is starting up"): the line after libpq's "FATAL:  ", which holds no
// connection details; "" when the server never answered.
std::string server_refusal(const std::string& error) {
  const auto at = error.find("FATAL:  ");
  if (at == std::string::npos) return "";
  const std::string rest = error.substr(at + 8);
  return rest.substr(0, rest.find('\n'));
}

// Requests answered at once: a scrape, and a probe or two. Each has its head whole before it takes
// a thread, and kAnswerTimeout to read the rest (a body is never read) and to send its answer.
constexpr std::size_t kThreads = 4;
constexpr std::chrono::seconds kAnswerTimeout{2};
constexpr const char* kText = "text/plain; charset=utf-8";

void reply(httplib::Response& res, const health::Answer& answer) {
  res.status = answer.status;
  res.set_content(answer.body, kText);
}

// Why address:port cannot be listened on, found by trying it once more here, since httplib's bind
// answers only false: the name that does not resolve, or bind's own reason ("Address already in
// use", "Cannot assign requested address").
std::string why_not_listening(const std::string& address, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(address.c_str(), service.c_str(), &hints, &found); rc != 0)
    return std::string("cannot resolve the address: ") + ::gai_strerror(rc);
  std::string reason = "no address to listen on";
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      reason = std::generic_category().message(errno);
      continue;
    }
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    const bool bound = ::bind(fd, a->ai_addr, a->ai_addrlen) == 0;
    const int error = errno;
    ::close(fd);
    reason =
        bound ? "the address was free when tried again" : std::generic_category().message(error);
    if (bound) break;
  }
  ::freeaddrinfo(found);
  return reason;
}

// Runs each task at once on httplib's listening thread: the task only hands a socket to the gate.
class AtOnce : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> task) override { task(); }
  void shutdown() override {}
};

}  // namespace

// httplib's parser, router and answer writer. Its listening thread accepts; each connection then
// goes to the gate, not to httplib's own reading, which waits 5 s for each byte however many come.
class MetricsListener::Server : public httplib::Server {
 public:
  explicit Server(MetricsListener& listener) : listener_(listener) {
    new_task_queue = [] { return new AtOnce; };
  }
  using httplib::Server::process_request;
  // httplib listens with a backlog of 5: of 64 clients connecting at once, most waited for the
  // kernel's retries, seconds, and a probe among them too.
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }

 private:
  bool process_and_close_socket(socket_t sock) override {
    listener_.gate_->admit(sock);
    return true;
  }

  MetricsListener& listener_;
};

MetricsListener::MetricsListener(const Config& config, metrics::Registry& registry,
                                 std::string application_name, const WorkerHealth& health)
    : config_(config),
      registry_(registry),
      application_name_(std::move(application_name)),
      health_(health),
      server_(std::make_unique<Server>(*this)) {
  // httplib's default adds SO_REUSEPORT, with which a second worker given the same port would
  // share it silently, each answering some scrapes: it must fail instead.
  server_->set_socket_options([](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    metrics::TextWriter database;
    write_database_gauges(database);
    res.set_content(registry_.render() + database.take(), metrics::kContentType);
  });
  server_->Get("/livez", [](const httplib::Request& req, httplib::Response& res) {
    reply(res, health::answer("livez", {{"ping", std::nullopt}}, req.has_param("verbose")));
  });
  server_->Get("/readyz", [this](const httplib::Request& req, httplib::Response& res) {
    reply(res, health::answer("readyz", readiness(), req.has_param("verbose")));
  });
  // Other methods on these paths get 405 with Allow, as the API answers them, and 404 elsewhere.
  // Before routing: httplib reads a POST's, PUT's or PATCH's body first (a thread waiting for a
  // client), and without one answers 400 with none.
  server_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "GET" || req.method == "HEAD")
      return httplib::Server::HandlerResponse::Unhandled;
    const bool ours = req.path == "/metrics" || req.path == "/livez" || req.path == "/readyz";
    if (!ours) {
      res.status = 404;
      return httplib::Server::HandlerResponse::Handled;
    }
    res.status = 405;
    res.set_header("Allow", "GET");  // and the connection closes, a body it sent unread
    res.set_content(req.method + " is not allowed here; allowed: GET\n", kText);
    return httplib::Server::HandlerResponse::Handled;
  });
}

MetricsListener::~MetricsListener() {
  stop();
}

std::optional<std::string> MetricsListener::start() {
  if (!server_->bind_to_port(config_.worker.metrics_address, config_.worker.metrics_port))
    return why_not_listening(config_.worker.metrics_address, config_.worker.metrics_port);
  server_->widen_backlog();
  threads_ = std::make_unique<httplib::ThreadPool>(kThreads);
  gate_ = std::make_unique<HeadGate>([this](int fd, std::string received) {
    threads_->enqueue(
        [this, fd, received = std::move(received)]() mutable { serve(fd, std::move(received)); });
  });
  serving_ = std::thread([this] { server_->listen_after_bind(); });
  return std::nullopt;
}

void MetricsListener::stop() {
  if (!serving_.joinable()) return;
  // stop() only ends a server that has begun listening, which the thread does at once.
  for (int i = 0; i < 1000 && !server_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_->stop();
  serving_.join();
  gate_.reset();         // nothing more is handed on
  threads_->shutdown();  // the requests handed on are answered, each within its deadlines
}

void MetricsListener::serve(int fd, std::string received) {
  static const std::function<void(httplib::Request&)> kNoSetup;
  DeadlineStream stream(fd, std::move(received), kAnswerTimeout);
  bool client_closes = false;
  // The connection closes after this answer: a next request would be read on this thread, however
  // slowly it came.
  server_->process_request(stream, /*close_connection=*/true, client_closes, kNoSetup);
}

pqxx::connection* MetricsListener::connection() {
  if (conn_ && conn_->is_open()) return conn_.get();
  try {
    conn_ = open_connection(config_.database.url, application_name_);
    // A scrape or a probe must not hang on a stuck database.
    pqxx::nontransaction(*conn_).exec("SET statement_timeout = '5s'");
    return conn_.get();
  } catch (const std::exception& e) {
    conn_.reset();
    refused_because_ = server_refusal(e.what());
    log::debug("metrics listener: database unreachable",
               {{"error", database_error(e, config_.database.url)}});
    return nullptr;
  }
}

// A scrape that cannot reach the database leaves its gauges out.
void MetricsListener::write_database_gauges(metrics::TextWriter& out) {
  std::lock_guard lock(mutex_);
  pqxx::connection* conn = connection();
  if (conn == nullptr) return;
  try {
    pqxx::nontransaction tx(*conn);
    metrics::write_database_gauges(tx, out);
  } catch (const std::exception& e) {
    conn_.reset();
    log::warn("metrics listener: could not read the database's gauges",
              {{"error", database_error(e, config_.database.url)}});
  }
}

std::vector<health::CheckResult> MetricsListener::readiness() {
  std::lock_guard lock(mutex_);
  const auto check = [this] {
    pqxx::connection* conn = connection();
    if (conn == nullptr) {
      return health::database_unreachable(
          refused_because_.empty() ? "the database is unreachable"
                                   : "the database refused the connection: " + refused_because_);
    }
    auto checks = health::check_database(*conn, Program::worker);
    if (checks.front().failure) conn_.reset();
    return checks;
  };
  // A connection the server closed since the last probe (it restarted, or ended the session) is
  // replaced before the answer, which then says why a new one cannot be had, if it cannot.
  const bool reused = conn_ != nullptr;
  auto checks = check();
  if (reused && checks.front().failure) checks = check();
  for (auto& c : health_.checks()) checks.push_back(std::move(c));
  return checks;
}

}  // namespace nudge
