#include "deadline_stream.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace nudge {
namespace {

// The numeric address and port of `address`, or "" and 0.
void numeric(const sockaddr_storage& address, socklen_t length, std::string& ip, int& port) {
  char host[NI_MAXHOST] = "";
  char service[NI_MAXSERV] = "";
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host, sizeof host, service,
                    sizeof service, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return;
  ip = host;
  port = std::atoi(service);
}

}  // namespace

DeadlineStream::DeadlineStream(int fd, std::string received, std::chrono::milliseconds timeout)
    : fd_(fd),
      received_(std::move(received)),
      timeout_(timeout),
      read_deadline_(Clock::now() + timeout) {}

DeadlineStream::~DeadlineStream() {
  ::shutdown(fd_, SHUT_WR);
  ::close(fd_);
}

bool DeadlineStream::wait_for(short events, Clock::time_point deadline) const {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count())));
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

DeadlineStream::Clock::time_point DeadlineStream::write_deadline() const {
  if (write_deadline_ == Clock::time_point{}) write_deadline_ = Clock::now() + timeout_;
  return write_deadline_;
}

bool DeadlineStream::is_readable() const {
  return read_ < received_.size() || wait_for(POLLIN, read_deadline_);
}

bool DeadlineStream::is_writable() const {
  return wait_for(POLLOUT, write_deadline());
}

ssize_t DeadlineStream::read(char* ptr, std::size_t size) {
  if (read_ < received_.size()) {
    const std::size_t n = std::min(size, received_.size() - read_);
    std::memcpy(ptr, received_.data() + read_, n);
    read_ += n;
    return static_cast<ssize_t>(n);
  }
  for (;;) {
    const ssize_t n = ::recv(fd_, ptr, size, 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if ((errno != EAGAIN && errno != EWOULDBLOCK) || !wait_for(POLLIN, read_deadline_)) return -1;
  }
}

ssize_t DeadlineStream::write(const char* ptr, std::size_t size) {
  const auto deadline = write_deadline();
  std::size_t sent = 0;
  while (sent < size) {
    const ssize_t n = ::send(fd_, ptr + sent, size - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ||
               !wait_for(POLLOUT, deadline)) {
      return -1;
    }
  }
  return static_cast<ssize_t>(size);
}

void DeadlineStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    numeric(address, length, ip, port);
}

void DeadlineStream::get_local_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    numeric(address, length, ip, port);
}

}  // namespace nudge
