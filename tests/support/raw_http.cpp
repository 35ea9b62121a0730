#include "support/raw_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <utility>

namespace nudge::test {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Parses a complete answer at the front of `in` and removes it; nullopt while incomplete.
std::optional<RawResponse> take_response(std::string& in) {
  const auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return std::nullopt;
  RawResponse r;
  const auto first_eol = in.find("\r\n");
  const std::string status_line = in.substr(0, first_eol);  // "HTTP/1.1 200 OK"
  const auto space = status_line.find(' ');
  r.status = space == std::string::npos ? 0 : std::atoi(status_line.c_str() + space + 1);
  std::size_t at = first_eol + 2;
  while (at < head_end) {
    const auto eol = in.find("\r\n", at);
    const std::string line = in.substr(at, eol - at);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[lower(line.substr(0, colon))] = value;
    }
    at = eol + 2;
  }
  const auto length_header = r.headers.find("content-length");
  const std::size_t length = length_header == r.headers.end()
                                 ? 0
                                 : std::strtoul(length_header->second.c_str(), nullptr, 10);
  if (in.size() < head_end + 4 + length) return std::nullopt;
  r.body = in.substr(head_end + 4, length);
  in.erase(0, head_end + 4 + length);
  return r;
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

std::string RawResponse::header(const std::string& name) const {
  const auto it = headers.find(lower(name));
  return it == headers.end() ? "" : it->second;
}

RawConnection::RawConnection(int port, int receive_buffer_bytes) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  if (receive_buffer_bytes > 0)
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

RawConnection::RawConnection(RawConnection&& other) noexcept
    : fd_(other.fd_), buffered_(std::move(other.buffered_)), closed_(other.closed_) {
  other.fd_ = -1;
}

bool RawConnection::send(const std::string& bytes) {
  std::size_t sent = 0;
  while (fd_ >= 0 && sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return fd_ >= 0;
}

bool RawConnection::receive_more(std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0 || closed_) return false;
  pollfd pfd{fd_, POLLIN, 0};
  if (::poll(&pfd, 1, remaining_ms(deadline)) <= 0) return false;
  char buf[16384];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    closed_ = true;
    return false;
  }
  buffered_.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::optional<RawResponse> RawConnection::read_response(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto r = take_response(buffered_)) return r;
    if (!receive_more(deadline)) return std::nullopt;
  }
}

std::optional<RawResponse> RawConnection::request(const std::string& bytes,
                                                  std::chrono::milliseconds timeout) {
  if (!send(bytes)) return std::nullopt;
  return read_response(timeout);
}

bool RawConnection::closed_by_server(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!closed_ && buffered_.empty()) {
    if (!receive_more(deadline) && !closed_) return false;
  }
  return closed_ && buffered_.empty();
}

std::string RawConnection::read_some(std::chrono::milliseconds timeout) {
  if (buffered_.empty()) receive_more(std::chrono::steady_clock::now() + timeout);
  return std::exchange(buffered_, std::string());
}

std::string raw_request(const std::string& method, const std::string& path,
                        const std::optional<std::string>& body, const std::string& extra_headers) {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
  if (body)
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body->size()) +
         "\r\n";
  r += "\r\n";
  if (body) r += *body;
  return r;
}

}  // namespace nudge::test
