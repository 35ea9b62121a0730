#pragma once
// Holds each connection the worker's metrics listener accepts until its request head has arrived
// in whole, on one thread (epoll) for all of them; only then is it handed on to be answered. A
// client that sends its head slowly, or nothing, costs a socket for at most kHeadTimeout, never
// one of the threads that answer: four clients trickling a byte every 2 s kept httplib's four
// threads, and /livez unanswered, for as long as they liked (explore29a M5).

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nudge {

class HeadGate {
 public:
  // A head that arrived in whole: the (non-blocking) socket, now the callee's, and every byte read
  // from it (the head, and whatever followed it).
  using Ready = std::function<void(int fd, std::string received)>;

  // From a connection's accept to the end of its head; past it, the client is answered 408.
  static constexpr std::chrono::seconds kHeadTimeout{2};
  // A longer head is answered 431 (httplib's own limit on a header line).
  static constexpr std::size_t kMaxHeadBytes = 8192;
  // Connections waiting at once; a new one past it closes the oldest (a probe's head arrives with
  // its connection, so it is the old ones that are slow), so that waiting clients cannot take
  // the file descriptors deliveries need.
  static constexpr std::size_t kMaxWaiting = 256;

  explicit HeadGate(Ready ready);
  // Closes the connections still waiting.
  ~HeadGate();
  HeadGate(const HeadGate&) = delete;
  HeadGate& operator=(const HeadGate&) = delete;

  // From any thread: takes an accepted socket.
  void admit(int fd);

 private:
  using Clock = std::chrono::steady_clock;
  struct Waiting {
    int fd;
    Clock::time_point deadline;
    std::string received;
    std::list<Waiting>::iterator self;
  };

  void run();
  void take_admitted();
  void on_readable(Waiting& w);
  // Sends `answer` as far as the socket takes it at once, then closes.
  void refuse(Waiting& w, const std::string& answer);
  void close(Waiting& w);

  Ready ready_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::list<Waiting> waiting_;  // in the order admitted, which is deadline order
  std::mutex admitted_mutex_;
  std::vector<int> admitted_;
  bool stopping_ = false;  // under admitted_mutex_
  std::thread thread_;
};

}  // namespace nudge
