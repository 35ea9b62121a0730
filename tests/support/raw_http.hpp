#pragma once
// An HTTP client on a raw socket, for what client libraries do not let a test do: requests
// without Content-Length, pipelined or half-sent requests, many idle keep-alive connections.

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace nudge::test {

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  // The value of header `name` (any case), or "" when it is absent.
  std::string header(const std::string& name) const;
};

class RawConnection {
 public:
  // Connects to 127.0.0.1:port; connected() says whether it worked. A receive buffer size
  // (SO_RCVBUF, before connecting) makes a client that reads slowly fill up sooner.
  explicit RawConnection(int port, int receive_buffer_bytes = 0);
  ~RawConnection();
  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&&) = delete;
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  // The next answer (its head, then a body as long as its Content-Length), if it comes within
  // `timeout`.
  std::optional<RawResponse> read_response(std::chrono::milliseconds timeout);
  // send(), then read_response().
  std::optional<RawResponse> request(const std::string& bytes, std::chrono::milliseconds timeout);
  // The server closes the connection within `timeout` without sending anything more.
  bool closed_by_server(std::chrono::milliseconds timeout);
  // After read_response: the bytes of the body that follow (an answer without a length),
  // what is buffered or else what arrives within `timeout`; "" on timeout or once closed.
  std::string read_some(std::chrono::milliseconds timeout);
  bool closed() const { return closed_ && buffered_.empty(); }

 private:
  // Reads what arrives until `deadline`; false on timeout, or when the server closed.
  bool receive_more(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffered_;
  bool closed_ = false;
};

// "METHOD PATH HTTP/1.1" with a Host header; with a body (and its Content-Length) when given.
std::string raw_request(const std::string& method, const std::string& path,
                        const std::optional<std::string>& body = std::nullopt,
                        const std::string& extra_headers = "");

}  // namespace nudge::test
