#pragma once
// The API's one I/O thread (epoll): accepts connections up to a limit, reads each request while
// its client sends it, hands a complete request to `on_ready` (which gives it to a request
// thread), and keeps idle keep-alive connections until their client sends the next request or
// the keep-alive timeout passes. An idle or slow client costs a socket and a few hundred bytes,
// never a request thread. A request not in whole by its deadline is answered 408 here, and a
// head over kMaxHeadBytes 431, unread (each closes the connection, lingering a moment so that the
// client reads the answer); the rest of a body an answer did not need is dropped here too. A client
// past the limit is sent `overloaded` (a complete 503 answer) and its connection closed (over
// HTTPS, the connection is closed without one: a client that has not finished its handshake could
// not read it). A connection whose answer goes on (a Server-Sent Events stream) is kept here too
// once its head is written: the loop writes what its Outbox holds, without blocking, whenever it is
// told the outboxes grew and the client can take more.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "connection.hpp"

namespace nudge::api {

// Bytes a streaming connection sends, shared with the other streams that send the same (a page
// of the live stream is one buffer, written to every client that wants all of it).
using Piece = std::shared_ptr<const std::string>;

// What a streaming connection sends: filled by another thread, taken by the loop.
class Outbox {
 public:
  virtual ~Outbox() = default;
  // Appends what is queued to `out`, in order; false when the stream ends once `out` is sent.
  virtual bool take(std::vector<Piece>& out) = 0;
};

class ConnectionLoop {
 public:
  struct Settings {
    std::size_t max_connections = 0;
    std::chrono::milliseconds keep_alive{0};  // an idle connection is closed after this
    // A stream's client must take bytes within this; a request being received must arrive by its
    // connection's deadline (Connection::request_deadline), or is answered `timed_out`.
    std::chrono::milliseconds request_timeout{0};
    ConnectionLimits limits{};
    std::string overloaded;  // the answer a client past max_connections gets
    // Complete answers (each closes the connection) to a request head over kMaxHeadBytes (431),
    // and to a request that did not arrive by its deadline (408).
    std::string head_too_large;
    std::string head_malformed;  // 400, to a head that is not CRLF lines of name: value
    std::string timed_out;
    // The answer (503) to a request still arriving kStopGrace after the loop began stopping.
    std::string stopping;
    SSL_CTX* tls = nullptr;  // HTTPS: each connection's TLS session is made from this
  };
  // How long a stopping loop still receives a request already begun: a slow upload has up to
  // its deadline otherwise (26 s for 1 MiB), past the time a service manager gives the stop.
  static constexpr std::chrono::seconds kStopGrace{5};
  // Called on the loop thread with a connection holding a complete request; it must not block.
  using Ready = std::function<void(Connection&)>;

  // Takes the listening socket.
  ConnectionLoop(int listen_fd, Settings settings, Ready on_ready);
  ~ConnectionLoop();
  ConnectionLoop(const ConnectionLoop&) = delete;
  ConnectionLoop& operator=(const ConnectionLoop&) = delete;

  // Runs until stop() and the last connection is closed.
  void run();
  // From any thread: stop accepting, close idle connections, let the others finish.
  void stop();
  bool stopping() const { return stop_requested_.load(); }
  // From the thread `on_ready` gave the connection to, when done with it (its last use of it):
  // keep it for the client's next request, or close it.
  void give_back(Connection& connection, bool keep);
  // Instead of give_back, once the answer's head is sent: the connection becomes a stream fed
  // by `outbox` until the outbox ends, the client leaves or stops reading, or the loop stops.
  void keep_streaming(Connection& connection, std::shared_ptr<Outbox> outbox);
  // From any thread: outboxes have more to send.
  void wake_streams();

  // From any thread, for metrics: connections open as of the last one accepted or the end of
  // the loop's last turn, whichever came later, and
  // clients refused since the start (past max_connections, or out of file descriptors).
  std::size_t open_count() const { return open_count_.load(std::memory_order_relaxed); }
  std::uint64_t refused_count() const { return refused_count_.load(std::memory_order_relaxed); }

 private:
  // Each connection lives in the list of its state; moving it is a splice. The idle, reading
  // and lingering lists are kept in deadline order. A closed connection waits in `closed_` until
  // the end of the loop's turn, so that no event of the turn can refer to a freed one.
  enum class State { idle, reading, busy, lingering, streaming, closed };
  struct Tracked : Connection {
    using Connection::Connection;
    State state = State::idle;
    std::chrono::steady_clock::time_point deadline;
    std::list<Tracked>::iterator self;
    // A stream's: its source, the pieces taken from it and not yet sent (from the byte `sent`
    // of piece `piece` on), and since when the client has taken none (the deadline then is
    // when it is given up).
    std::shared_ptr<Outbox> outbox;
    std::vector<Piece> unsent;
    std::size_t piece = 0;
    std::size_t sent = 0;
    bool ending = false;
    bool blocked = false;
  };
  using Clock = std::chrono::steady_clock;

  struct GivenBack {
    Tracked* connection;
    bool keep;
    Clock::time_point at;
    std::shared_ptr<Outbox> outbox;  // set: keep it as a stream
  };

  std::list<Tracked>& list_of(State state);
  std::size_t open_connections() const;
  Tracked& add(int fd, State state, Clock::time_point deadline);
  void move(Tracked& c, State to, Clock::time_point deadline);
  void close(Tracked& c);
  void arm(Tracked& c);
  void dispatch(Tracked& c);
  // Sends `answer` (what the socket takes of it at once), then lingers.
  void answer_and_close(Tracked& c, const std::string& answer);
  // Ends the output and drops what the client still sends for a moment, so that it reads the
  // answer rather than a reset; then the connection closes.
  void linger(Tracked& c);

  void accept_all();
  void refuse(int fd);
  void refuse_without_files();
  void on_readable(Tracked& c);
  void on_stream_event(Tracked& c, std::uint32_t events);
  void start_stream(Tracked& c, std::shared_ptr<Outbox> outbox);
  void write_stream(Tracked& c);
  void write_streams();
  void take_given_back();
  void begin_stopping();
  void expire(Clock::time_point now);
  // When a request being received on `c` must have arrived: its own deadline, or the stop's.
  Clock::time_point reading_deadline(const Tracked& c) const;
  int wait_ms(Clock::time_point now) const;

  Settings settings_;
  Ready on_ready_;
  int listen_fd_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;   // eventfd: given-back connections or stop()
  int spare_fd_ = -1;  // given up to accept (and refuse) a client when out of file descriptors
  std::list<Tracked> idle_, reading_, busy_, lingering_, streaming_, closed_;
  std::atomic<bool> streams_woken_{false};
  std::vector<char> scratch_;
  std::atomic<bool> stop_requested_{false};
  bool stopping_ = false;
  Clock::time_point stop_deadline_{};  // when stopping_: the last a request may still arrive by

  std::mutex inbox_mutex_;
  std::vector<GivenBack> inbox_;
  std::vector<GivenBack> taken_;  // the loop's side of inbox_

  std::atomic<std::size_t> open_count_{0};
  std::atomic<std::uint64_t> refused_count_{0};
  std::size_t refused_ = 0;  // since the last warning about it
  Clock::time_point refused_logged_{};
};

}  // namespace nudge::api
