#include "support/misbehaving_relay.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string_view>

namespace nudge::test {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kSlowChunk = 64;
constexpr auto kSlowPause = 50ms;

bool send_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

MisbehavingRelay::MisbehavingRelay(Behaviour behaviour) : behaviour_(behaviour) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("relay: no socket");
  if (behaviour_ == Behaviour::slow_reader) {
    // Set before listen(): accepted connections inherit it, and the window is sized by it.
    const int size = 4096;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("relay: cannot listen on loopback");
  }
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

MisbehavingRelay::~MisbehavingRelay() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    // Ends every blocked recv() (and accept(), below); the descriptors stay ours until joined.
    for (const int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  wake_.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);
  accept_thread_.join();
  for (auto& t : threads_) t.join();
  for (const int fd : fds_) ::close(fd);
  ::close(listen_fd_);
}

std::string MisbehavingRelay::received() const {
  std::lock_guard lock(mutex_);
  return received_;
}

int MisbehavingRelay::open_connections() const {
  std::lock_guard lock(mutex_);
  return open_;
}

void MisbehavingRelay::accept_loop() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard lock(mutex_);
    if (stopping_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    fds_.push_back(fd);
    ++open_;
    threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void MisbehavingRelay::serve(int fd) {
  if (behaviour_ == Behaviour::refuses_greeting) {
    send_all(fd, "554 5.7.1 relay.test: no SMTP service for you\r\n");
    ::shutdown(fd, SHUT_WR);
  } else if (!silent_) {
    send_all(fd, "220 relay.test ESMTP\r\n");
  }
  int taken = 0;        // messages taken on this connection
  std::string pending;  // bytes of a line not yet complete
  bool in_data = false;
  bool quit = false;
  char chunk[4096];
  for (;;) {
    std::size_t most = sizeof chunk;
    if (behaviour_ == Behaviour::slow_reader) {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, kSlowPause, [this] { return stopping_; });
      most = kSlowChunk;
    }
    if (behaviour_ == Behaviour::closes_idle_connections && taken > 0 && pending.empty()) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(kIdleClose.count())) == 0) {
        send_all(fd, "421 4.4.2 relay.test Error: timeout exceeded\r\n");
        ::shutdown(fd, SHUT_WR);
        taken = 0;  // then reads what the client still sends, and answers none of it
        quit = true;
        continue;
      }
    }
    const ssize_t n = ::recv(fd, chunk, most, 0);
    if (n <= 0) break;  // the client closed (or reset) the connection, or we are stopping
    {
      std::lock_guard lock(mutex_);
      received_.append(chunk, static_cast<std::size_t>(n));
    }
    if (silent_ || quit) continue;  // keeps reading, never answers
    pending.append(chunk, static_cast<std::size_t>(n));
    for (auto end = pending.find("\r\n"); end != std::string::npos; end = pending.find("\r\n")) {
      const std::string line = pending.substr(0, end);
      pending.erase(0, end + 2);
      const bool at_sender = behaviour_ == Behaviour::hangs_up_at_the_sender && !in_data &&
                             (line.rfind("MAIL", 0) == 0 || line.rfind("mail", 0) == 0);
      if (at_sender ||
          (behaviour_ == Behaviour::hangs_up_after_a_message && taken > 0 && !in_data)) {
        ::shutdown(fd, SHUT_RDWR);
        quit = true;
        break;
      }
      const std::string reply = answer(line, in_data, quit);
      if (reply.rfind("250 2.0.0", 0) == 0) ++taken;
      if (silent_) break;
      const bool slow = behaviour_ == Behaviour::slow_end_of_data ||
                        (behaviour_ == Behaviour::slow_first_end_of_data && messages_ == 1);
      if (slow && reply.rfind("250 2.0.0", 0) == 0) {
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, kEndOfDataPause, [this] { return stopping_; });
      }
      if (!reply.empty()) send_all(fd, reply);
      if (behaviour_ == Behaviour::silent_after_one_message && messages_ > 0) silent_ = true;
      if (quit) {
        ::shutdown(fd, SHUT_WR);
        break;
      }
    }
  }
  std::lock_guard lock(mutex_);
  --open_;
}

std::string MisbehavingRelay::answer(const std::string& line, bool& in_data, bool& quit) {
  if (in_data) {
    if (line != ".") return "";
    in_data = false;
    ++messages_;
    return "250 2.0.0 Ok: queued\r\n";
  }
  std::string verb = line.substr(0, 4);
  for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (verb == "EHLO") return "250-relay.test\r\n250 8BITMIME\r\n";
  if (verb == "MAIL" && behaviour_ == Behaviour::refuses_sender)
    return "553 5.7.1 Sender address rejected: not owned by user\r\n";
  if (verb == "RCPT" && behaviour_ == Behaviour::refuses_recipient_at_length)
    return "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
           "550-5.1.1 Please try double-checking the recipient's address.\r\n"
           "550 5.1.1 https://support.example/?p=NoSuchUser\r\n";
  if (verb == "RCPT" && behaviour_ == Behaviour::rate_limits_recipients) {
    quit = true;
    return "421 4.7.28 relay.test: unusual rate of mail to this domain, try again later\r\n";
  }
  if (verb == "HELO" || verb == "MAIL" || verb == "RCPT" || verb == "RSET" || verb == "NOOP")
    return "250 OK\r\n";
  if (verb == "DATA") {
    in_data = true;
    return "354 End data with <CR><LF>.<CR><LF>\r\n";
  }
  if (verb == "QUIT") {
    quit = true;
    return "221 Bye\r\n";
  }
  return "502 Command not implemented\r\n";
}

}  // namespace nudge::test
