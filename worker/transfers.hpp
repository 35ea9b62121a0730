#pragma once
// Many HTTP or SMTP transfers at once on one thread, through libcurl's multi interface. The
// claim loop owns one; network channels hand it their prepared easy handles.

#include <curl/curl.h>

#include <cstddef>
#include <functional>
#include <map>
#include <vector>

namespace nudge {

class Transfers {
 public:
  Transfers();
  ~Transfers();
  Transfers(const Transfers&) = delete;
  Transfers& operator=(const Transfers&) = delete;

  // Takes ownership of `easy` (already set up) and starts it; `done` gets libcurl's result and
  // the handle (to read the response code) when the transfer ends, from run(). The handle is
  // cleaned up after `done` returns.
  void add(CURL* easy, std::function<void(CURLcode, CURL*)> done);

  // Waits up to `timeout_ms` until a transfer can progress or one of `extra_fds` is readable,
  // then progresses every transfer and calls `done` of those that ended. Returns at once when a
  // transfer ended in an earlier call already.
  void run(int timeout_ms, const std::vector<int>& extra_fds);

  // Ends every transfer at once; each `done` gets CURLE_ABORTED_BY_CALLBACK.
  void abort_all();

  std::size_t active() const { return done_.size(); }

 private:
  int collect();  // calls `done` of ended transfers; returns how many

  CURLM* multi_;
  std::map<CURL*, std::function<void(CURLcode, CURL*)>> done_;
};

}  // namespace nudge
