#pragma once
// The httplib::Stream the metrics listener answers a request on, once HeadGate has read its head:
// reads give the bytes already received, then wait for the socket until a deadline; an answer
// has its own deadline, from its first byte, to be taken by the client. No wait is longer, however
// slowly the client sends or reads (httplib's own stream waits 5 s for each byte).

#include <httplib.h>

#include <chrono>
#include <string>

namespace nudge {

class DeadlineStream : public httplib::Stream {
 public:
  // Takes the (non-blocking) socket, and the bytes read from it so far; `timeout` is each
  // deadline's distance, for reading from now, for writing from the first write.
  DeadlineStream(int fd, std::string received, std::chrono::milliseconds timeout);
  ~DeadlineStream() override;
  DeadlineStream(const DeadlineStream&) = delete;
  DeadlineStream& operator=(const DeadlineStream&) = delete;

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, std::size_t size) override;
  ssize_t write(const char* ptr, std::size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return fd_; }

 private:
  using Clock = std::chrono::steady_clock;
  // Waits for `events` on the socket until `deadline`; false when they did not come.
  bool wait_for(short events, Clock::time_point deadline) const;
  Clock::time_point write_deadline() const;

  int fd_;
  std::string received_;
  std::size_t read_ = 0;  // of received_
  std::chrono::milliseconds timeout_;
  Clock::time_point read_deadline_;
  mutable Clock::time_point write_deadline_{};  // set by the first write (or wait to write)
};

}  // namespace nudge
