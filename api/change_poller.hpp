#pragma once
// The API process's one reader of the change log: a thread with its own database connection
// that every kPollInterval makes the next batch of the log (nudge.stream_advance: the
// transactions finished since the last), renders each change once (as the REST answers render
// its objects, read at that moment) and publishes it to the StreamHub, which fans it out to
// every client. With no client joined it only moves its position past the last batch, rendering
// nothing. It also sends the hub's heartbeat. The workers' hot path never notifies it.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "stream_hub.hpp"

namespace nudge::api {

class ChangePoller {
 public:
  ChangePoller(std::string url, std::string application_name, StreamHub& hub,
               std::chrono::milliseconds heartbeat);
  ~ChangePoller();  // stops the thread
  ChangePoller(const ChangePoller&) = delete;
  ChangePoller& operator=(const ChangePoller&) = delete;

 private:
  void run();
  // Reads and publishes what the log holds now; throws on a database error.
  void read_log(pqxx::connection& conn);
  // Waits until `until` or stop; false on stop.
  bool wait(std::chrono::steady_clock::time_point until);

  std::string url_;
  std::string application_name_;
  StreamHub& hub_;
  std::chrono::milliseconds heartbeat_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace nudge::api
