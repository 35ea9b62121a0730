#include "connection.hpp"

#include <netdb.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <tuple>

namespace nudge::api {
namespace {

// Answers up to this size are sent with one send(); larger ones are sent as httplib writes them.
constexpr std::size_t kOutBufferBytes = 65536;
constexpr std::string_view kEmptyBody = "Content-Length: 0\r\n";
// Set when the request read on this thread passes its deadline; cleared as each one begins.
thread_local bool t_timed_out = false;

std::pair<std::string, int> numeric_address(const sockaddr_storage& addr, socklen_t len) {
  char host[NI_MAXHOST] = "";
  char service[NI_MAXSERV] = "";
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof host, service,
                    sizeof service, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return {"", -1};
  return {host, std::atoi(service)};
}

}  // namespace

bool request_timed_out() {
  return t_timed_out;
}

Connection::Connection(int fd, const ConnectionLimits& limits, SSL_CTX* tls)
    : fd_(fd), limits_(limits) {
  if (tls == nullptr) return;
  ssl_ = SSL_new(tls);
  // Without a session this connection fails at its first read: never plain HTTP on a TLS port.
  if (ssl_ != nullptr && SSL_set_fd(ssl_, fd_) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ssl_ == nullptr) {
    ERR_clear_error();
    write_failed_ = input_ended_ = tls_broken_ = true;
    return;
  }
  SSL_set_accept_state(ssl_);
}

Connection::~Connection() {
  if (ssl_ != nullptr) {
    // close_notify, if the socket takes it at once; the client learns of the end either way.
    if (handshake_done_ && !write_failed_) SSL_shutdown(ssl_);
    SSL_free(ssl_);
    ERR_clear_error();
  }
  ::close(fd_);
}

ssize_t Connection::tls_result(int result) {
  if (result > 0) return result;
  switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_WANT_READ:
      want_write_ = false;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      want_write_ = true;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    default:
      // The queue is the thread's; left full, it would mislead the next session on it.
      ERR_clear_error();
      errno = EPROTO;
      return -1;
  }
}

ssize_t Connection::receive_some(char* data, std::size_t size) {
  if (ssl_ == nullptr) return ::recv(fd_, data, size, 0);
  return tls_result(SSL_read(ssl_, data, static_cast<int>(std::min<std::size_t>(size, INT_MAX))));
}

ssize_t Connection::receive_to_discard(char* data, std::size_t size) {
  return ::recv(fd_, data, size, 0);
}

ssize_t Connection::send_some(const char* data, std::size_t size) {
  if (ssl_ == nullptr) return ::send(fd_, data, size, MSG_NOSIGNAL);
  return tls_result(SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(size, INT_MAX))));
}

// True when the handshake is done or waits for the socket; false when it failed (a client that
// does not speak TLS, or does not accept the certificate).
bool Connection::handshake() {
  const int result = SSL_do_handshake(ssl_);
  if (result == 1) {
    handshake_done_ = true;
    want_write_ = false;
    return true;
  }
  return tls_result(result) < 0 && errno == EAGAIN;
}

bool Connection::receive(char* scratch, std::size_t size) {
  if (tls_broken_) return false;
  if (ssl_ != nullptr && !handshake_done_) {
    if (!handshake()) return false;
    if (!handshake_done_) return true;  // the loop waits for the client's next bytes
  }
  for (;;) {
    const ssize_t n = receive_some(scratch, size);
    if (n > 0) {
      if (!framing_ && !has_input() && !dropping()) start_deadline();
      in_.append(scratch, static_cast<std::size_t>(n));
      // A short read emptied the socket; the loop re-arms it for more. Over TLS, reading goes
      // on until OpenSSL asks for more from the socket, or the head is too long (the connection
      // is closed: what OpenSSL holds is not wanted).
      if (ssl_ == nullptr && (static_cast<std::size_t>(n) < size || request_ready())) return true;
      if (ssl_ != nullptr && in_.size() - in_pos_ >= kMaxHeadBytes && request_ready() &&
          head_too_large())
        return true;
    } else if (n == 0) {
      input_ended_ = true;
      return true;
    } else if (errno != EINTR) {
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
  }
}

bool Connection::await_input(std::chrono::milliseconds wait, char* scratch, std::size_t size) {
  pollfd pfd{fd_, POLLIN, 0};
  return ::poll(&pfd, 1, static_cast<int>(wait.count())) > 0 && receive(scratch, size);
}

void Connection::start_deadline() {
  deadline_ = std::chrono::steady_clock::now() + limits_.io_timeout;
  body_timed_ = false;
}

bool Connection::drop_unread() {
  const bool was_dropping = dropping();
  if (unread_ > 0) {
    const std::size_t n = std::min(unread_, in_.size() - in_pos_);
    in_pos_ += n;
    unread_ -= n;
  } else if (refused_chunks_) {
    in_pos_ += refused_chunks_->feed(std::string_view(in_).substr(in_pos_), nullptr);
    if (refused_chunks_->state() == ChunkDecoder::State::malformed) {
      // Where the next request starts is unknown: the connection ends.
      in_pos_ = in_.size();
      input_ended_ = true;
    }
    if (refused_chunks_->state() != ChunkDecoder::State::more) refused_chunks_.reset();
  }
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
  if (dropping()) return false;
  if (was_dropping && has_input()) start_deadline();  // the next request's first bytes are here
  return true;
}

bool Connection::request_ready() {
  if (!drop_unread()) return false;
  // RFC 9112 section 2.2: empty lines before a request are ignored.
  while (in_.size() - in_pos_ >= 2 && in_[in_pos_] == '\r' && in_[in_pos_ + 1] == '\n') {
    in_pos_ += 2;
  }
  if (!has_input()) return false;
  if (!framing_ || !framing_->ready) {
    framing_ = frame_request(std::string_view(in_).substr(in_pos_), limits_.max_body_bytes);
  }
  if (!body_timed_ && framing_->head_size > 0) {
    // The body's time, from what the head says of its length (a chunked one's is unknown).
    body_timed_ = true;
    const std::size_t body =
        framing_->chunked ? limits_.max_body_bytes
                          : std::min(framing_->body_size.value_or(0), limits_.max_body_bytes);
    deadline_ += std::chrono::milliseconds(body * 1000 / kMinBodyBytesPerSecond);
  }
  return framing_->ready || input_ended_;
}

std::size_t Connection::body_pending() const {
  if (!framing_ || !framing_->body_size) return 0;
  const std::size_t rest = framing_->head_size + *framing_->body_size - consumed_;
  const std::size_t here = in_.size() - in_pos_;
  return rest > here ? rest - here : 0;
}

void Connection::refuse_unread_body() {
  lingers_ = true;
  if (framing_) framing_->close_after = true;
}

void Connection::close_after_answer() {
  close_asked_ = true;
}

void Connection::release_buffers() {
  if (!has_input()) {
    std::string().swap(in_);
    in_pos_ = 0;
  }
  std::string().swap(out_);
}

void Connection::begin_request() {
  t_timed_out = false;
  ++requests_;
  consumed_ = 0;
  refused_chunks_.reset();
  if (framing_ && framing_->expect_value_at) {
    in_.replace(in_pos_ + *framing_->expect_value_at, kExpectContinue.size(),
                framing_->expect_continue ? kExpectContinue : kExpectIgnored);
  }
  if (framing_ && framing_->lacks_length) {
    in_.insert(in_pos_ + framing_->head_size - 2, kEmptyBody);
    framing_->head_size += kEmptyBody.size();
  }
}

bool Connection::chunked_body_pending() const {
  if (!chunked_body()) return false;
  ChunkDecoder decoder;  // a dry run over what is here
  decoder.feed(std::string_view(in_).substr(in_pos_), nullptr);
  return decoder.state() == ChunkDecoder::State::more;
}

int Connection::read_chunked_body(std::size_t& body_size) {
  RequestFraming& f = *framing_;
  f.chunked = false;
  // httplib has read the head: the body starts at in_pos_.
  ChunkDecoder decoder;
  std::string body;
  std::size_t used = 0;  // bytes of the body that the decoder has taken
  char scratch[16384];
  for (;;) {
    used += decoder.feed(std::string_view(in_).substr(in_pos_ + used), &body);
    if (decoder.state() != ChunkDecoder::State::more) break;
    // What was decoded is in `body`: the encoded bytes go, so that no more than the limit (and
    // a read) is ever held.
    in_.erase(in_pos_, used);
    used = 0;
    if (decoder.data_size() > limits_.max_body_bytes) {
      // Refused before the rest is read; it is dropped as it comes (end_request).
      refused_chunks_ = decoder;
      return 413;
    }
    // A client that asked to be told to go on was told by httplib: it waits for that.
    if (!flush() || !receive_once(scratch, sizeof scratch)) break;
  }
  if (decoder.state() != ChunkDecoder::State::done) {
    // Malformed, or it stopped arriving: where the next request starts is unknown.
    f.close_after = true;
    end_input();
    return t_timed_out ? 408 : 400;
  }
  in_.replace(in_pos_, used, body);
  f.body_size = body_size = body.size();
  return 0;
}

bool Connection::receive_once(char* scratch, std::size_t size) {
  for (;;) {
    const bool decrypted = ssl_ != nullptr && SSL_pending(ssl_) > 0;
    if (!decrypted && !(want_write_ ? wait_for(POLLOUT) : wait_for_input())) return false;
    const ssize_t n = receive_some(scratch, size);
    if (n > 0) {
      in_.append(scratch, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) {
      input_ended_ = true;
      return false;
    }
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return false;
  }
}

bool Connection::must_close() const {
  return input_ended_ || close_asked_ || (framing_ && framing_->close_after);
}

bool Connection::end_request() {
  // A body cut short by its deadline: the 408 is read before the connection closes.
  if (t_timed_out) lingers_ = true;
  bool ok = flush() && !lingers_;
  if (refused_chunks_) {
    // httplib read the head only (the request was refused before its body).
    if (!ok || !framing_ || consumed_ != framing_->head_size) refused_chunks_.reset();
  } else if (framing_ && framing_->body_size) {
    const std::size_t message = framing_->head_size + *framing_->body_size;
    // httplib reads no body for GET, and none of one refused (too large): it is dropped as it
    // arrives, on the loop, without a request thread.
    if (consumed_ < message) unread_ = message - consumed_;
  }
  if (!ok) {
    refused_chunks_.reset();
    unread_ = 0;
  }
  framing_.reset();
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > 0) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  if (ok && !dropping() && has_input()) start_deadline();  // a pipelined request's clock
  drop_unread();
  return ok;
}

bool Connection::wait_for_input() {
  using namespace std::chrono;
  const auto left = ceil<milliseconds>(deadline_ - steady_clock::now());
  if (left.count() <= 0) {
    t_timed_out = true;
    return false;
  }
  pollfd pfd{fd_, POLLIN, 0};
  const auto wait = std::min(limits_.io_timeout, left);
  for (;;) {
    const int n = ::poll(&pfd, 1, static_cast<int>(wait.count()));
    if (n > 0) return true;
    if (n == 0 && steady_clock::now() >= deadline_) t_timed_out = true;
    if (n == 0 || errno != EINTR) return false;
  }
}

bool Connection::wait_for(short events) const {
  pollfd pfd{fd_, events, 0};
  for (;;) {
    const int n = ::poll(&pfd, 1, static_cast<int>(limits_.io_timeout.count()));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

bool Connection::send_all(const char* data, std::size_t size) {
  while (size > 0 && !write_failed_) {
    const ssize_t n = send_some(data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
               wait_for(ssl_ == nullptr || want_write_ ? POLLOUT : POLLIN)) {
      continue;
    } else {
      write_failed_ = true;
    }
  }
  return !write_failed_;
}

bool Connection::flush() {
  const bool ok = send_all(out_.data(), out_.size());
  out_.clear();
  return ok;
}

void Connection::end_output() {
  // Over TLS with close_notify first; either way the client reads what was sent, then the end.
  if (ssl_ != nullptr && handshake_done_ && !write_failed_) SSL_shutdown(ssl_);
  write_failed_ = true;
  ::shutdown(fd_, SHUT_WR);
}

bool Connection::is_readable() const {
  return has_input() || (!input_ended_ && wait_for(POLLIN));
}

bool Connection::is_writable() const {
  return !write_failed_ && wait_for(POLLOUT);
}

ssize_t Connection::read(char* ptr, std::size_t size) {
  if (has_input()) {
    const std::size_t n = std::min(size, in_.size() - in_pos_);
    std::memcpy(ptr, in_.data() + in_pos_, n);
    in_pos_ += n;
    consumed_ += n;
    return static_cast<ssize_t>(n);
  }
  if (input_ended_) return 0;
  // The client may be waiting for what was written so far (100 Continue) before it sends more.
  if (!flush()) return -1;
  if (ssl_ != nullptr) {
    if (!receive_more()) return -1;
    return read(ptr, size);
  }
  for (;;) {
    if (!wait_for_input()) return -1;
    const ssize_t n = ::recv(fd_, ptr, size, 0);
    if (n > 0) {
      consumed_ += static_cast<std::size_t>(n);
      return n;
    }
    if (n == 0) {
      input_ended_ = true;
      return 0;
    }
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
  }
}

bool Connection::receive_more() {
  char scratch[16384];
  while (!has_input() && !input_ended_) {
    if (!wait_for_input() || !receive(scratch, sizeof scratch)) return false;
  }
  return true;
}

ssize_t Connection::write(const char* ptr, std::size_t size) {
  if (write_failed_) return -1;
  if (out_.size() + size <= kOutBufferBytes) {
    out_.append(ptr, size);
  } else if (!flush() || !send_all(ptr, size)) {
    return -1;
  }
  return static_cast<ssize_t>(size);
}

void Connection::get_remote_ip_and_port(std::string& ip, int& port) const {
  if (!remote_) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    remote_ = ::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0
                  ? numeric_address(addr, len)
                  : std::pair<std::string, int>{"", -1};
  }
  std::tie(ip, port) = *remote_;
}

void Connection::get_local_ip_and_port(std::string& ip, int& port) const {
  if (!local_) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    local_ = ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0
                 ? numeric_address(addr, len)
                 : std::pair<std::string, int>{"", -1};
  }
  std::tie(ip, port) = *local_;
}

}  // namespace nudge::api
