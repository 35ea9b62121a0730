#pragma once
// Many HTTP or SMTP transfers at once on one thread, through libcurl's multi interface. The
// claim loop owns one; network channels hand it their prepared easy handles. It knows every
// socket libcurl opens for them, so it can cut them all without waiting on any peer.

#include <curl/curl.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "nudge/address_guard.hpp"

namespace nudge {

// What one transfer may connect to: each address libcurl is about to connect (every attempt,
// every address a name resolves to) goes through `guard` first, so a name that resolves to
// another address later (DNS rebinding) is caught too. Owned by the caller, alive until the
// transfer's `done` has returned.
struct ConnectPolicy {
  const AddressGuard* guard = nullptr;
  std::string refused;  // why the first refused address was refused; empty if none was
  int opened = 0;       // sockets opened to allowed addresses
};

class Transfers {
 public:
  // `max_lanes`: the most lanes spawn() runs at once (so the most connections they keep).
  explicit Transfers(std::size_t max_lanes = kLanes);
  ~Transfers();
  Transfers(const Transfers&) = delete;
  Transfers& operator=(const Transfers&) = delete;

  // Takes ownership of `easy` (already set up; its socket callbacks are Transfers' own) and
  // starts it; `done` gets libcurl's result and the handle (to read the response code) when the
  // transfer ends, from run(). The handle is cleaned up after `done` returns. With a `policy`,
  // a refused address is never connected: libcurl sees a failed connection (and tries the
  // name's next address, if any).
  void add(CURL* easy, std::function<void(CURLcode, CURL*)> done, ConnectPolicy* policy = nullptr);

  // Waits up to `timeout_ms` until a transfer can progress or one of `extra_fds` is readable,
  // then progresses every transfer and calls `done` of those that ended. Returns at once when a
  // transfer ended in an earlier call already.
  void run(int timeout_ms, const std::vector<int>& extra_fds);

  // Ends every transfer at once; each `done` gets CURLE_ABORTED_BY_CALLBACK. Cuts every
  // connection first, so nothing said on the way out (an SMTP end of data or QUIT) waits on the
  // peer: a silent or slow peer cannot hold this, nor the destructor after it.
  void abort_all();

  // Shuts down every connection libcurl holds, idle cached ones included, without a word to the
  // peer: whatever libcurl waits for on them (a reply, room to send) fails at once, so the
  // transfers on them end with an error; the lanes' connections too (spawn). One of the two
  // members another thread may call while this one runs (with post): libcurl can block a thread
  // inside a transfer (SMTP waits for the reply to the end of data, and to QUIT, inside
  // curl_multi_perform), and this is how that wait is ended.
  void cut_connections();

  // Transfers under way: on this thread, and the bodies given to spawn() not ended yet.
  std::size_t active() const { return done_.size() + lane_bodies_; }

  // Whether abort_all() is under way: a lane's transfer that ends now was cut by it.
  bool aborting() const { return aborting_; }

  // Runs `body` on a lane: a thread of its own with a Transfers of its own, for a transfer
  // libcurl may block inside (SMTP waits for the reply to the end of data inside
  // curl_multi_perform): on this thread it held back every other transfer, and their time ran
  // on while it waited. Up to max_lanes bodies run at once, one per lane, the rest wait their turn;
  // a lane keeps its connection for the next body (a relay is not dialled again per message).
  // A lane's connections are cut with this one's. abort_all() and the destructor wait for the
  // lanes; a body they never started is called with nullptr, to report that it did not run.
  void spawn(std::function<void(Transfers* own)> body);
  // As many conversations at once as a claim loop has delivery slots by default; lanes are
  // started only while every lane is busy, so a fast relay is served by a few.
  static constexpr std::size_t kLanes = 64;

  // From any thread: `fn` runs on this Transfers' own thread, from run() (or abort_all()).
  void post(std::function<void()> fn);

 private:
  // A transfer under way; libcurl's open-socket callback gets it (map nodes do not move).
  struct Pending {
    std::function<void(CURLcode, CURL*)> done;
    Transfers* owner = nullptr;
    ConnectPolicy* policy = nullptr;
  };

  int collect();     // calls `done` of ended transfers; returns how many
  int run_posted();  // runs what post() queued; returns how many
  void run_lane();   // a lane's thread: bodies from lane_queue_ until the lanes stop
  void stop_lanes();

  // libcurl's CURLOPT_OPENSOCKETFUNCTION (with a Pending) and CURLOPT_CLOSESOCKETFUNCTION (with
  // this): they keep sockets_, and the first applies the transfer's ConnectPolicy.
  static curl_socket_t open_socket(void* pending, curlsocktype purpose, curl_sockaddr* address);
  static int close_socket(void* self, curl_socket_t fd);

  CURLM* multi_;
  std::map<CURL*, Pending> done_;
  // Open now, for a transfer or in libcurl's connection cache. Guarded, and closed under the
  // guard, so cut_connections() never shuts down a number the process has reused.
  std::mutex sockets_mutex_;
  std::set<curl_socket_t> sockets_;

  std::atomic<bool> aborting_{false};
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;

  const std::size_t max_lanes_;
  std::vector<std::thread> lanes_;           // this thread's only
  std::atomic<std::size_t> lane_bodies_{0};  // queued or running
  std::mutex lanes_mutex_;                   // guards the three below
  std::condition_variable lanes_wake_;
  std::deque<std::function<void(Transfers*)>> lane_queue_;
  std::size_t idle_lanes_ = 0;
  bool lanes_stopping_ = false;
  // The lanes' own Transfers while their threads run, for cut_connections().
  std::mutex lane_transfers_mutex_;
  std::set<Transfers*> lane_transfers_;
};

}  // namespace nudge
