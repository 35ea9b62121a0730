#include "head_gate.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <stdexcept>

namespace nudge {
namespace {

// A complete answer that closes the connection.
std::string closing_answer(const std::string& status, const std::string& body) {
  return "HTTP/1.1 " + status + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

const std::string kTimedOut =
    closing_answer("408 Request Timeout", "the request did not arrive within 2 s\n");
const std::string kTooLarge =
    closing_answer("431 Request Header Fields Too Large", "the request's head is over 8 KiB\n");
constexpr int kEvents = 64;

// Just past the head's end, its first empty line (after CRLF, or a bare LF, which httplib then
// answers 400), searching from `from`; npos when it has not arrived.
std::size_t head_end(const std::string& bytes, std::size_t from) {
  for (auto at = bytes.find('\n', from); at != std::string::npos; at = bytes.find('\n', at + 1)) {
    if (bytes.compare(at + 1, 1, "\n") == 0) return at + 2;
    if (bytes.compare(at + 1, 2, "\r\n") == 0) return at + 3;
  }
  return std::string::npos;
}

}  // namespace

HeadGate::HeadGate(Ready ready) : ready_(std::move(ready)) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error("cannot create the epoll loop");
  epoll_event wakeup{EPOLLIN, {.ptr = nullptr}};
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wakeup);
  thread_ = std::thread([this] { run(); });
}

HeadGate::~HeadGate() {
  {
    std::lock_guard lock(admitted_mutex_);
    stopping_ = true;
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto ignored = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
  for (Waiting& w : waiting_) ::close(w.fd);
  for (const int fd : admitted_) ::close(fd);
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void HeadGate::admit(int fd) {
  {
    std::lock_guard lock(admitted_mutex_);
    admitted_.push_back(fd);
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto ignored = ::write(wake_fd_, &one, sizeof one);
}

void HeadGate::run() {
  std::vector<epoll_event> events(kEvents);
  for (;;) {
    int wait_ms = -1;
    if (!waiting_.empty()) {
      const auto left = waiting_.front().deadline - Clock::now();
      wait_ms = static_cast<int>(
          std::max<std::int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
    }
    const int n = ::epoll_wait(epoll_fd_, events.data(), kEvents, wait_ms);
    for (int i = 0; i < n; ++i) {
      if (auto* w = static_cast<Waiting*>(events[static_cast<std::size_t>(i)].data.ptr)) {
        on_readable(*w);
      } else {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto ignored = ::read(wake_fd_, &count, sizeof count);
      }
    }
    {
      std::lock_guard lock(admitted_mutex_);
      if (stopping_) return;
    }
    take_admitted();
    const auto now = Clock::now();
    while (!waiting_.empty() && waiting_.front().deadline <= now)
      refuse(waiting_.front(), kTimedOut);
  }
}

void HeadGate::take_admitted() {
  std::vector<int> fds;
  {
    std::lock_guard lock(admitted_mutex_);
    fds.swap(admitted_);
  }
  for (const int fd : fds) {
    if (waiting_.size() >= kMaxWaiting) close(waiting_.front());
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    Waiting& w = waiting_.emplace_back(Waiting{fd, Clock::now() + kHeadTimeout, {}, {}});
    w.self = std::prev(waiting_.end());
    epoll_event e{EPOLLIN, {.ptr = &w}};
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e) != 0) close(w);
  }
}

void HeadGate::on_readable(Waiting& w) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(w.fd, buffer, sizeof buffer, 0);
    if (n == 0) return close(w);  // the client left before its head was whole
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return close(w);
    }
    // Searched from the last bytes before these, as the end may straddle two reads.
    const std::size_t from = w.received.size() < 2 ? 0 : w.received.size() - 2;
    w.received.append(buffer, static_cast<std::size_t>(n));
    if (head_end(w.received, from) <= kMaxHeadBytes) {
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.fd, nullptr);
      const int fd = w.fd;
      std::string received = std::move(w.received);
      waiting_.erase(w.self);
      return ready_(fd, std::move(received));
    }
    if (w.received.size() >= kMaxHeadBytes) return refuse(w, kTooLarge);
  }
}

void HeadGate::refuse(Waiting& w, const std::string& answer) {
  // What the client sent is read first: a socket closed with bytes unread resets the connection,
  // and the client might then never read the answer.
  char buffer[4096];
  while (::recv(w.fd, buffer, sizeof buffer, 0) > 0) {
  }
  [[maybe_unused]] const auto sent = ::send(w.fd, answer.data(), answer.size(), MSG_NOSIGNAL);
  ::shutdown(w.fd, SHUT_WR);
  close(w);
}

void HeadGate::close(Waiting& w) {
  ::close(w.fd);  // which takes it out of the epoll set
  waiting_.erase(w.self);
}

}  // namespace nudge
