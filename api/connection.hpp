#pragma once
// One client connection: its socket, the bytes received and not yet read by httplib, the answer
// being written, and how the request at the front of its input is framed. It is the
// httplib::Stream httplib reads a request from and writes the answer to. The connection loop
// reads into it while its client is idle or still sending; a request thread borrows it to serve
// one request after another while complete ones are buffered; never both at once. Over HTTPS it
// holds the connection's TLS session too: the handshake is driven by receive(), without
// blocking, and every byte goes through SSL_read and SSL_write.

#include <httplib.h>
#include <openssl/ssl.h>

#include <chrono>
#include <optional>
#include <string>

#include "request_framing.hpp"

namespace nudge::api {

struct ConnectionLimits {
  // Longest wait for the client to send or take bytes, and the time a request's head has to
  // arrive in whole (from its first byte).
  std::chrono::milliseconds io_timeout;
  std::size_t max_body_bytes;  // larger bodies are refused (413)
};

// A request's body has, beyond io_timeout, one second for each this many bytes of it (of at most
// max_body_bytes) to arrive in whole: a slow but honest client gets there (1 MiB in 26 s with
// the defaults), a client trickling bytes to hold the connection does not.
inline constexpr std::size_t kMinBodyBytesPerSecond = 65536;

// The request being read on this thread passed its deadline (Connection::deadline) before it
// arrived in whole: its answer is a 408 and the connection closes.
bool request_timed_out();

class Connection : public httplib::Stream {
 public:
  // Takes the (non-blocking) socket; with `tls`, the client speaks TLS on it.
  Connection(int fd, const ConnectionLimits& limits, SSL_CTX* tls = nullptr);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Reads what the socket holds, without waiting, until a request is complete (over TLS: until
  // the socket is empty, as bytes OpenSSL held back would not wake the loop). Goes on with the
  // TLS handshake first while it is not done. False when the socket or the handshake failed; an
  // orderly close by the client only ends the input.
  bool receive(char* scratch, std::size_t size);
  // receive() cannot go on until the socket takes bytes (the handshake's answer did not fit):
  // the loop waits for that as well as for input.
  bool wants_write() const { return want_write_; }
  // Waits up to `wait` for the client's next bytes and reads them as receive() does; false when
  // none came in time or the socket failed.
  bool await_input(std::chrono::milliseconds wait, char* scratch, std::size_t size);
  // No more input is to be waited for: what is buffered is served as it is.
  void end_input() { input_ended_ = true; }
  bool input_ended() const { return input_ended_; }
  bool has_input() const { return in_pos_ < in_.size(); }
  // A request can be served without waiting for the client (or the input has ended). The rest
  // of a body the last answer did not need is dropped first, as it arrives.
  bool request_ready();
  // When the request being received (or the body being dropped) must have arrived in whole: its
  // first byte's arrival plus io_timeout, plus the body's time (kMinBodyBytesPerSecond) once the
  // head says how long it is.
  std::chrono::steady_clock::time_point request_deadline() const { return deadline_; }
  // The head at the front of the input is over kMaxHeadBytes: it is refused (431), unread.
  bool head_too_large() const { return framing_ && framing_->head_too_large; }
  // The head at the front of the input is malformed: it is refused (400), unread.
  bool head_malformed() const { return framing_ && framing_->head_malformed; }
  bool head_refused() const { return head_too_large() || head_malformed(); }
  // The rest of a body the last answer did not need is still to be dropped.
  bool dropping() const { return unread_ > 0 || refused_chunks_.has_value(); }
  // The request is answered without its body, which has not all arrived: the connection closes
  // after the answer (lingering, so that the client reads it), rather than read the body.
  void refuse_unread_body();
  // The client asked to close: the connection closes once this request is answered.
  void close_after_answer();
  bool lingers() const { return lingers_; }
  // Nothing more is sent: the client reads what was, then the end of the connection.
  void end_output();
  // The body's bytes not received yet (0 when it has all arrived or the request has none).
  std::size_t body_pending() const;
  // Frees the buffers of a connection with nothing buffered, so that idle ones cost no heap.
  void release_buffers();

  // Before httplib reads the request: a request without Content-Length or Transfer-Encoding
  // gets "Content-Length: 0", its body length by RFC 9112 (httplib would wait for a body).
  void begin_request();
  // The request has a chunked body (Transfer-Encoding: chunked alone) not yet decoded, and not
  // all of it has arrived.
  bool chunked_body() const { return framing_ && framing_->chunked; }
  bool chunked_body_pending() const;
  // Once httplib has read the head of a request with a chunked body: reads the body and decodes
  // it as it arrives, so that httplib reads it as a Content-Length body of `body_size` bytes
  // (httplib would read a chunked one whole, whatever its size). Answers the status the request
  // is to be refused with, or 0: 413 once the decoded body passes max_body_bytes (the rest is
  // not kept, and dropped as it arrives), 400 when it is malformed, 408 when it did not arrive by
  // the deadline (and the connection closes after the answer).
  int read_chunked_body(std::size_t& body_size);
  // The answer must close the connection: the input has ended, or where the next request
  // starts is unknown.
  bool must_close() const;
  // After httplib answered: sends the rest of the answer and drops what is buffered of any part
  // of the request's body httplib did not read; the rest (of a chunked body too large too,
  // decoded) is dropped as it arrives by request_ready(), by the deadline. False when the
  // connection cannot serve another request.
  bool end_request();
  unsigned requests() const { return requests_; }

  // httplib::Stream: reads come from the buffered input, then from the socket with
  // io_timeout; writes are gathered and sent in one go by end_request() (or when large).
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, std::size_t size) override;
  ssize_t write(const char* ptr, std::size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return fd_; }

  // One recv or send, through TLS when there is a session: bytes moved, 0 when the client
  // closed, or -1 with errno (EAGAIN: try again when the socket is ready; want_write_ says for
  // which direction, over TLS). The connection loop writes a stream's messages with them.
  ssize_t receive_some(char* data, std::size_t size);
  ssize_t send_some(const char* data, std::size_t size);
  // One recv from the socket itself, past any TLS session: bytes to be thrown away (a refused
  // client's rest, after this side's close_notify, when OpenSSL may no longer read them).
  ssize_t receive_to_discard(char* data, std::size_t size);

 private:
  bool wait_for(short events) const;
  // Waits for the client's next bytes up to io_timeout and the request's deadline; false when
  // none came (past the deadline: timed out).
  bool wait_for_input();
  // Drops the buffered bytes of the body still to be dropped; true once none is left.
  bool drop_unread();
  // The request's clock starts: its first byte arrived.
  void start_deadline();
  // Waits up to io_timeout (and the deadline) for the client's next bytes (at most `size`) and
  // adds them to the buffered input. False when none came, the client closed or the socket failed.
  bool receive_once(char* scratch, std::size_t size);
  bool send_all(const char* data, std::size_t size);
  bool flush();
  ssize_t tls_result(int result);
  bool handshake();
  // The client's next bytes into the buffered input, for read() over TLS (which must not leave
  // decrypted bytes inside OpenSSL, where the loop would not see them).
  bool receive_more();

  int fd_;
  SSL* ssl_ = nullptr;  // the TLS session, or none for plain HTTP
  bool handshake_done_ = false;
  bool want_write_ = false;
  bool tls_broken_ = false;  // no session could be made for this connection
  const ConnectionLimits& limits_;
  std::string in_;  // received; the bytes before in_pos_ have been read
  std::size_t in_pos_ = 0;
  std::string out_;  // answer bytes not yet sent
  std::optional<RequestFraming> framing_;
  // The rest of a chunked body refused as too large: decoded and dropped by end_request.
  std::optional<ChunkDecoder> refused_chunks_;
  std::size_t unread_ = 0;  // bytes of a body the answer did not need, still to be dropped
  std::chrono::steady_clock::time_point deadline_{};
  bool body_timed_ = false;  // deadline_ includes the body's time
  bool lingers_ = false;
  bool close_asked_ = false;  // the client asked to close (Connection: close, in any form)
  std::size_t consumed_ = 0;  // bytes of the current request httplib has read
  bool input_ended_ = false;
  bool write_failed_ = false;
  unsigned requests_ = 0;
  mutable std::optional<std::pair<std::string, int>> remote_, local_;
};

}  // namespace nudge::api
