#include "connection_loop.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "nudge/log.hpp"

namespace nudge::api {
namespace {

using namespace std::chrono_literals;

constexpr int kEvents = 256;
constexpr int kAcceptsPerWake = 256;  // then the other events get their turn
constexpr std::size_t kScratchBytes = 65536;
// A refused client is given this long to read its answer (503, 408, 431, a refusal before its
// body) before the socket is closed (closing with its request unread could reset the connection
// before the answer is read).
constexpr auto kRefusedLinger = 1s;
constexpr std::size_t kMaxLingering = 64;
constexpr auto kRefusalReportInterval = 10s;
// Connections given back for keeping do not wake the loop (their next request does); while any
// connection is out, the loop looks at least this often, so that idle ones time out on time.
constexpr auto kBookkeepingInterval = 250ms;

void wake(int event_fd) {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto ignored = ::write(event_fd, &one, sizeof one);
}

}  // namespace

ConnectionLoop::ConnectionLoop(int listen_fd, Settings settings, Ready on_ready)
    : settings_(std::move(settings)),
      on_ready_(std::move(on_ready)),
      listen_fd_(listen_fd),
      scratch_(kScratchBytes) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error("cannot create the epoll loop");
  ::fcntl(listen_fd_, F_SETFL, ::fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
  // The kernel grows a process's descriptor table by doubling it, and with threads running
  // each growth waits for an RCU grace period: during the first burst of connections, accept()
  // stalled for tens of milliseconds. Grown once now to hold every connection.
  const int highest = ::fcntl(listen_fd_, F_DUPFD_CLOEXEC,
                              static_cast<int>(settings_.max_connections + kMaxLingering + 16));
  if (highest >= 0) ::close(highest);
  epoll_event listener{EPOLLIN, {.ptr = &listen_fd_}};
  epoll_event wakeup{EPOLLIN, {.ptr = &wake_fd_}};
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &listener);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wakeup);
}

ConnectionLoop::~ConnectionLoop() {
  // Connections close as the lists are destroyed.
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (spare_fd_ >= 0) ::close(spare_fd_);
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

std::list<ConnectionLoop::Tracked>& ConnectionLoop::list_of(State state) {
  switch (state) {
    case State::idle:
      return idle_;
    case State::reading:
      return reading_;
    case State::busy:
      return busy_;
    case State::lingering:
      return lingering_;
    case State::streaming:
      return streaming_;
    case State::closed:
      break;
  }
  return closed_;
}

std::size_t ConnectionLoop::open_connections() const {
  return idle_.size() + reading_.size() + busy_.size() + streaming_.size();
}

ConnectionLoop::Tracked& ConnectionLoop::add(int fd, State state, Clock::time_point deadline) {
  auto& list = list_of(state);
  Tracked& c = list.emplace_back(fd, settings_.limits, settings_.tls);
  c.self = std::prev(list.end());
  c.state = state;
  c.deadline = deadline;
  // Counted before its first request is served: that request may be the one asking for metrics.
  open_count_.store(open_connections(), std::memory_order_relaxed);
  return c;
}

// Placed by deadline, searching from the back: nearly always the back itself.
void ConnectionLoop::move(Tracked& c, State to, Clock::time_point deadline) {
  auto& list = list_of(to);
  auto at = list.end();
  while (at != list.begin() && std::prev(at)->deadline > deadline) --at;
  list.splice(at, list_of(c.state), c.self);
  c.state = to;
  c.deadline = deadline;
}

void ConnectionLoop::close(Tracked& c) {
  move(c, State::closed, {});
}

// One readiness report, then the connection is quiet until armed again: it is never reported
// while a request thread has it.
void ConnectionLoop::arm(Tracked& c) {
  const std::uint32_t out = c.wants_write() ? static_cast<std::uint32_t>(EPOLLOUT) : 0u;
  epoll_event e{EPOLLIN | EPOLLONESHOT | out, {.ptr = &c}};
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.socket(), &e) != 0) close(c);
}

void ConnectionLoop::dispatch(Tracked& c) {
  move(c, State::busy, {});
  on_ready_(c);
}

void ConnectionLoop::answer_and_close(Tracked& c, const std::string& answer) {
  std::size_t sent = 0;
  while (sent < answer.size()) {
    const ssize_t n = c.send_some(answer.data() + sent, answer.size() - sent);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // the socket does not take it now: it is not waited for
    }
  }
  linger(c);
}

void ConnectionLoop::linger(Tracked& c) {
  c.end_output();
  if (lingering_.size() >= kMaxLingering) return close(c);
  epoll_event e{EPOLLIN, {.ptr = &c}};
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.socket(), &e) != 0) return close(c);
  move(c, State::lingering, Clock::now() + kRefusedLinger);
}

void ConnectionLoop::run() {
  std::vector<epoll_event> events(kEvents);
  while (!(stopping_ && open_connections() == 0 && lingering_.empty())) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), kEvents, wait_ms(Clock::now()));
    if (n < 0 && errno != EINTR) {
      log::error("epoll_wait failed", {{"errno", errno}});
      break;
    }
    // First, as a connection reported now may have been given back (and armed) just before.
    take_given_back();
    for (int i = 0; i < n; ++i) {
      void* const ptr = events[static_cast<std::size_t>(i)].data.ptr;
      if (ptr == &listen_fd_) {
        accept_all();
      } else if (ptr == &wake_fd_) {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto ignored = ::read(wake_fd_, &count, sizeof count);
      } else if (auto& c = *static_cast<Tracked*>(ptr); c.state == State::streaming) {
        on_stream_event(c, events[static_cast<std::size_t>(i)].events);
      } else {
        on_readable(c);
      }
    }
    if (streams_woken_.exchange(false)) write_streams();
    if (stop_requested_.load() && !stopping_) begin_stopping();
    expire(Clock::now());
    closed_.clear();  // the sockets close; no event of this turn is left to refer to them
    open_count_.store(open_connections(), std::memory_order_relaxed);
  }
}

void ConnectionLoop::stop() {
  stop_requested_.store(true);
  wake(wake_fd_);
}

void ConnectionLoop::give_back(Connection& connection, bool keep) {
  auto* const c = static_cast<Tracked*>(&connection);
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_.push_back({c, keep, Clock::now(), nullptr});
    if (keep) {
      // Armed here, so that the loop need not wake for it: the loop takes what was given back
      // before it handles the events that woke it. Armed under the lock, so that the loop,
      // once it has taken `c`, may close it without this thread still arming it.
      epoll_event e{EPOLLIN | EPOLLONESHOT, {.ptr = c}};
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->socket(), &e);
      return;
    }
  }
  wake(wake_fd_);
}

void ConnectionLoop::keep_streaming(Connection& connection, std::shared_ptr<Outbox> outbox) {
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_.push_back({static_cast<Tracked*>(&connection), true, Clock::now(), std::move(outbox)});
  }
  wake(wake_fd_);
}

void ConnectionLoop::wake_streams() {
  if (!streams_woken_.exchange(true)) wake(wake_fd_);
}

void ConnectionLoop::accept_all() {
  for (int i = 0; i < kAcceptsPerWake && !stopping_; ++i) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) refuse_without_files();
      return;  // EAGAIN: nobody else is waiting
    }
    if (open_connections() >= settings_.max_connections) {
      refuse(fd);
      continue;
    }
    // Registered quiet and read at once: a client usually sends its request as it connects.
    Tracked& c = add(fd, State::idle, Clock::now() + settings_.keep_alive);
    epoll_event quiet{0, {.ptr = &c}};
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &quiet) != 0) {
      close(c);
      continue;
    }
    on_readable(c);
  }
}

void ConnectionLoop::refuse(int fd) {
  ++refused_;
  refused_count_.fetch_add(1, std::memory_order_relaxed);
  const auto now = Clock::now();
  if (now - refused_logged_ >= kRefusalReportInterval) {
    log::warn("connections refused: the limit of open connections is reached",
              {{"max_connections", settings_.max_connections}, {"refused", refused_}});
    refused_ = 0;
    refused_logged_ = now;
  }
  if (settings_.tls != nullptr) {
    ::close(fd);
    return;
  }
  // A new connection's send buffer takes the whole answer at once.
  [[maybe_unused]] const auto sent =
      ::send(fd, settings_.overloaded.data(), settings_.overloaded.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  if (lingering_.size() >= kMaxLingering) {
    ::close(fd);
    return;
  }
  Tracked& c = add(fd, State::lingering, now + kRefusedLinger);
  epoll_event e{EPOLLIN, {.ptr = &c}};
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e) != 0) close(c);
}

// Out of file descriptors (the limit is kept below the process's, so something else holds
// them): the spare one is freed to take the client off the queue and answer it 503 at once,
// rather than leave it waiting.
void ConnectionLoop::refuse_without_files() {
  if (spare_fd_ < 0) return;
  ::close(spare_fd_);
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) {
    refused_count_.fetch_add(1, std::memory_order_relaxed);
    if (settings_.tls == nullptr) {
      [[maybe_unused]] const auto sent =
          ::send(fd, settings_.overloaded.data(), settings_.overloaded.size(), MSG_NOSIGNAL);
    }
    ::close(fd);
  }
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  log::warn("out of file descriptors: a connection was refused",
            {{"open_connections", open_connections()}});
}

void ConnectionLoop::on_readable(Tracked& c) {
  switch (c.state) {
    case State::busy:
    case State::streaming:
    case State::closed:
      return;
    case State::lingering:
      // Discard what the refused client sends until it closes. Over TLS too, unread: after the
      // close_notify sent, a failed SSL_read closed the socket with the client's rest unread,
      // and the reset cut the answer it had not read yet (1 run in 20).
      for (;;) {
        const ssize_t n = c.receive_to_discard(scratch_.data(), scratch_.size());
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        return close(c);
      }
    case State::idle:
    case State::reading:
      break;
  }
  if (!c.receive(scratch_.data(), scratch_.size())) return close(c);
  const bool ready = c.request_ready();
  // Refused unread, without a request thread: parsing it had no limit.
  if (c.head_too_large()) return answer_and_close(c, settings_.head_too_large);
  if (c.head_malformed()) return answer_and_close(c, settings_.head_malformed);
  if (ready) return dispatch(c);
  if (c.input_ended()) return close(c);  // the client left between requests
  // The deadline is the request's whole: more bytes do not extend it.
  if (c.has_input() || c.dropping()) move(c, State::reading, reading_deadline(c));
  arm(c);
}

void ConnectionLoop::take_given_back() {
  taken_.clear();  // the two vectors swap, so neither allocates once grown
  {
    std::lock_guard lock(inbox_mutex_);
    taken_.swap(inbox_);
  }
  for (auto& [c, keep, at, outbox] : taken_) {
    if (outbox) {
      if (stopping_) {
        close(*c);
      } else {
        start_stream(*c, std::move(outbox));
      }
    } else if (!keep && c->lingers()) {
      linger(*c);
    } else if (!keep || (stopping_ && (!c->has_input() || c->dropping()))) {
      close(*c);
    } else if (c->head_refused()) {
      // A pipelined request's head, refused unread.
      answer_and_close(*c,
                       c->head_too_large() ? settings_.head_too_large : settings_.head_malformed);
    } else if (c->has_input() || c->dropping()) {
      move(*c, State::reading, reading_deadline(*c));
    } else {
      c->release_buffers();
      move(*c, State::idle, at + settings_.keep_alive);
    }
  }
}

// Requests being received or served finish (their answers close the connection), one still
// arriving within kStopGrace (then a 503); idle connections have none, and are closed at once.
void ConnectionLoop::begin_stopping() {
  stopping_ = true;
  stop_deadline_ = Clock::now() + kStopGrace;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
  ::close(listen_fd_);
  listen_fd_ = -1;
  while (!idle_.empty()) close(idle_.front());
  while (!lingering_.empty()) close(lingering_.front());
  while (!streaming_.empty()) close(streaming_.front());  // a stream has no end to wait for
  for (auto it = reading_.begin(); it != reading_.end();) {
    Tracked& c = *it++;
    if (c.dropping()) {
      close(c);  // answered: only an unneeded body is left
    } else if (c.deadline > stop_deadline_) {
      move(c, State::reading, stop_deadline_);  // (the list keeps its order: `it` moves on)
    }
  }
}

ConnectionLoop::Clock::time_point ConnectionLoop::reading_deadline(const Tracked& c) const {
  const auto deadline = c.request_deadline();
  return stopping_ ? std::min(deadline, stop_deadline_) : deadline;
}

void ConnectionLoop::start_stream(Tracked& c, std::shared_ptr<Outbox> outbox) {
  move(c, State::streaming, {});
  c.outbox = std::move(outbox);
  // Level-triggered: the client's leaving (or bytes it should not send) is always reported.
  epoll_event e{EPOLLIN | EPOLLRDHUP, {.ptr = &c}};
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.socket(), &e) != 0) return close(c);
  write_stream(c);
}

// Sends what the outbox holds until it is empty or the client's socket is full; a full socket
// is watched for room, and given up after request_timeout without any.
void ConnectionLoop::write_stream(Tracked& c) {
  bool progressed = false;
  for (;;) {
    if (c.piece == c.unsent.size()) {
      c.unsent.clear();
      c.piece = 0;
      c.sent = 0;
      if (c.ending) return close(c);
      c.ending = !c.outbox->take(c.unsent);
      if (c.unsent.empty()) {
        if (c.ending) return close(c);
        break;
      }
    }
    const std::string& piece = *c.unsent[c.piece];
    if (c.sent == piece.size()) {
      ++c.piece;
      c.sent = 0;
      continue;
    }
    // Through the connection's TLS session over HTTPS.
    const ssize_t n = c.send_some(piece.data() + c.sent, piece.size() - c.sent);
    if (n > 0) {
      c.sent += static_cast<std::size_t>(n);
      progressed = true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.blocked || progressed) c.deadline = Clock::now() + settings_.request_timeout;
      if (!c.blocked) {
        c.blocked = true;
        epoll_event e{EPOLLIN | EPOLLRDHUP | EPOLLOUT, {.ptr = &c}};
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.socket(), &e) != 0) close(c);
      }
      return;
    } else {
      return close(c);
    }
  }
  if (c.blocked) {
    c.blocked = false;
    epoll_event e{EPOLLIN | EPOLLRDHUP, {.ptr = &c}};
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.socket(), &e) != 0) close(c);
  }
}

void ConnectionLoop::write_streams() {
  for (auto it = streaming_.begin(); it != streaming_.end();) {
    Tracked& c = *it++;  // write_stream may close it (moving it out of the list)
    if (!c.blocked) write_stream(c);
  }
}

void ConnectionLoop::on_stream_event(Tracked& c, std::uint32_t events) {
  if (events & (EPOLLERR | EPOLLHUP)) return close(c);
  if (events & (EPOLLIN | EPOLLRDHUP)) {
    // A stream's client has nothing to say: what it sends is dropped; its leaving ends it.
    for (;;) {
      const ssize_t n = c.receive_some(scratch_.data(), scratch_.size());
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      return close(c);
    }
  }
  if (events & EPOLLOUT) write_stream(c);
}

void ConnectionLoop::expire(Clock::time_point now) {
  while (!idle_.empty() && idle_.front().deadline <= now) close(idle_.front());
  while (!lingering_.empty() && lingering_.front().deadline <= now) close(lingering_.front());
  for (auto it = streaming_.begin(); it != streaming_.end();) {
    Tracked& c = *it++;
    if (c.blocked && c.deadline <= now) {
      // A client that stopped reading: its socket is full, so it cannot be told; said here.
      log::warn(
          "a stream client read nothing for request_timeout_ms: its stream is closed (it "
          "resumes from its Last-Event-ID)",
          {{"request_timeout_ms", static_cast<long long>(settings_.request_timeout.count())}});
      close(c);
    }
  }
  // A request that did not arrive in time is answered 408; a body still being dropped after
  // its answer just ends.
  while (!reading_.empty() && reading_.front().deadline <= now) {
    Tracked& c = reading_.front();
    if (c.dropping()) {
      close(c);
    } else if (stopping_ && now >= stop_deadline_) {
      answer_and_close(c, settings_.stopping);  // cut by the stop, not late by its own deadline
    } else {
      answer_and_close(c, settings_.timed_out);
    }
  }
}

int ConnectionLoop::wait_ms(Clock::time_point now) const {
  if (stop_requested_.load() && !stopping_) return 0;
  std::optional<Clock::time_point> next;
  for (const auto* list : {&idle_, &reading_, &lingering_}) {
    if (!list->empty() && (!next || list->front().deadline < *next)) next = list->front().deadline;
  }
  if ((!busy_.empty() || !streaming_.empty()) && (!next || now + kBookkeepingInterval < *next)) {
    next = now + kBookkeepingInterval;
  }
  if (!next) return -1;
  if (*next <= now) return 0;
  // Rounded up, so that the wait does not end just before the deadline.
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(*next - now).count());
}

}  // namespace nudge::api
