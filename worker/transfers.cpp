#include "transfers.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace nudge {

namespace {

// libcurl's process-wide setup, done once before the first handle (it is not thread-safe on
// its own, and claim loops start on several threads).
struct CurlGlobal {
  CurlGlobal() {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("libcurl could not initialise");
  }
  ~CurlGlobal() { curl_global_cleanup(); }
};

void ensure_curl_global() {
  static const CurlGlobal global;
}

}  // namespace

Transfers::Transfers(std::size_t max_lanes) : max_lanes_(std::max<std::size_t>(1, max_lanes)) {
  ensure_curl_global();
  multi_ = curl_multi_init();
  if (multi_ == nullptr) throw std::runtime_error("libcurl could not create a multi handle");
}

Transfers::~Transfers() {
  try {
    abort_all();
  } catch (...) {
  }
  curl_multi_cleanup(multi_);
}

void Transfers::spawn(std::function<void(Transfers* own)> body) {
  std::unique_lock lock(lanes_mutex_);
  lane_queue_.push_back(std::move(body));
  ++lane_bodies_;
  if (idle_lanes_ == 0 && lanes_.size() < max_lanes_) {
    try {
      lanes_.emplace_back([this] { run_lane(); });
    } catch (...) {  // no thread: a lane that is running takes the body when it is free
      if (lanes_.empty()) {
        lane_queue_.pop_back();
        --lane_bodies_;
        throw;
      }
    }
  }
  lock.unlock();
  lanes_wake_.notify_one();
}

void Transfers::run_lane() {
  std::optional<Transfers> own;
  try {
    own.emplace();
  } catch (...) {  // libcurl could not start: this lane reports what it takes as not run
  }
  if (own) {
    std::lock_guard lock(lane_transfers_mutex_);
    lane_transfers_.insert(&*own);
  }
  for (;;) {
    std::function<void(Transfers*)> body;
    bool run = false;
    {
      std::unique_lock lock(lanes_mutex_);
      ++idle_lanes_;
      lanes_wake_.wait(lock, [this] { return lanes_stopping_ || !lane_queue_.empty(); });
      --idle_lanes_;
      if (lane_queue_.empty()) break;  // stopping, and nothing left
      body = std::move(lane_queue_.front());
      lane_queue_.pop_front();
      run = own.has_value() && !lanes_stopping_;
    }
    try {
      body(run ? &*own : nullptr);
    } catch (...) {  // a body reports its own failures through post()
    }
    --lane_bodies_;
  }
  if (own) {
    std::lock_guard lock(lane_transfers_mutex_);
    lane_transfers_.erase(&*own);
  }
  post([] {});  // wakes run()
}

void Transfers::stop_lanes() {
  {
    std::lock_guard lock(lanes_mutex_);
    lanes_stopping_ = true;
  }
  lanes_wake_.notify_all();
  // A lane blocked on a silent peer ends once its connections are cut; one still resolving a
  // name or opening a socket ends within its connect timeout.
  while (lane_bodies_ > 0) {
    cut_connections();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& lane : lanes_) lane.join();
  lanes_.clear();
  std::lock_guard lock(lanes_mutex_);
  lanes_stopping_ = false;
}

void Transfers::post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(fn));
  }
  curl_multi_wakeup(multi_);
}

int Transfers::run_posted() {
  std::vector<std::function<void()>> posted;
  {
    std::lock_guard lock(posted_mutex_);
    posted.swap(posted_);
  }
  for (auto& fn : posted) fn();
  return static_cast<int>(posted.size());
}

void Transfers::abort_all() {
  aborting_ = true;
  cut_connections();
  // Lanes report through post(): wait for them, then run what they reported.
  stop_lanes();
  run_posted();
  while (!done_.empty()) {
    auto node = done_.extract(done_.begin());
    CURL* easy = node.key();
    curl_multi_remove_handle(multi_, easy);
    try {
      node.mapped().done(CURLE_ABORTED_BY_CALLBACK, easy);
    } catch (...) {
      curl_easy_cleanup(easy);
      throw;
    }
    curl_easy_cleanup(easy);
  }
  aborting_ = false;
}

void Transfers::add(CURL* easy, std::function<void(CURLcode, CURL*)> done, ConnectPolicy* policy) {
  Pending* pending = nullptr;
  try {
    pending = &done_.try_emplace(easy, Pending{std::move(done), this, policy}).first->second;
  } catch (...) {
    curl_easy_cleanup(easy);
    throw;
  }
  const auto fail = [&](const std::string& why) {
    done_.erase(easy);
    curl_easy_cleanup(easy);
    throw std::runtime_error("libcurl: " + why);
  };
  for (const CURLcode rc : {
           // A transfer that ends (timed out, aborted) while the threaded resolver still waits
           // for a DNS server that never answers leaves the thread behind: without this, libcurl
           // joins it, holding the claim loop and the stop for the resolver's own timeout.
           curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L),
           curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &Transfers::open_socket),
           curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, pending),
           curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &Transfers::close_socket),
           curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this),
       }) {
    if (rc != CURLE_OK) fail(curl_easy_strerror(rc));
  }
  if (const CURLMcode rc = curl_multi_add_handle(multi_, easy); rc != CURLM_OK)
    fail(curl_multi_strerror(rc));
}

void Transfers::cut_connections() {
  // libcurl ends SMTP politely: removing a running transfer sends the end of data and waits for
  // the reply, and closing a connection (cached ones in curl_multi_cleanup) sends QUIT and
  // waits for "221" up to libcurl's own 120 s, whatever our timeouts. On a shut-down socket the
  // send fails and a read sees the end at once, so nothing waits; libcurl still closes each
  // socket (close_socket). An upload cut before its end of data never gets one.
  {
    std::lock_guard lock(sockets_mutex_);
    for (const curl_socket_t fd : sockets_) ::shutdown(fd, SHUT_RDWR);
  }
  std::lock_guard lock(lane_transfers_mutex_);
  for (Transfers* lane : lane_transfers_) lane->cut_connections();
}

curl_socket_t Transfers::open_socket(void* pending, curlsocktype /*purpose*/,
                                     curl_sockaddr* address) {
  const Pending& transfer = *static_cast<const Pending*>(pending);
  if (ConnectPolicy* policy = transfer.policy; policy != nullptr && policy->guard != nullptr) {
    try {
      if (auto refusal = policy->guard->refusal(&address->addr)) {
        if (policy->refused.empty()) policy->refused = std::move(*refusal);
        return CURL_SOCKET_BAD;
      }
    } catch (...) {  // out of memory: no exception may cross into libcurl
      return CURL_SOCKET_BAD;
    }
  }
  const curl_socket_t fd = ::socket(address->family, address->socktype, address->protocol);
  if (fd == CURL_SOCKET_BAD) return fd;
  if (transfer.policy != nullptr) ++transfer.policy->opened;
  auto& transfers = *transfer.owner;
  try {
    std::lock_guard lock(transfers.sockets_mutex_);
    transfers.sockets_.insert(fd);
  } catch (...) {  // out of memory: no exception may cross into libcurl
    ::close(fd);
    return CURL_SOCKET_BAD;
  }
  return fd;
}

int Transfers::close_socket(void* self, curl_socket_t fd) {
  auto& transfers = *static_cast<Transfers*>(self);
  std::lock_guard lock(transfers.sockets_mutex_);
  transfers.sockets_.erase(fd);
  return ::close(fd);
}

void Transfers::run(int timeout_ms, const std::vector<int>& extra_fds) {
  int running = 0;
  curl_multi_perform(multi_, &running);
  if (collect() + run_posted() > 0) return;
  std::vector<curl_waitfd> waits;
  waits.reserve(extra_fds.size());
  for (const int fd : extra_fds) waits.push_back({fd, CURL_WAIT_POLLIN, 0});
  int ready = 0;
  curl_multi_poll(multi_, waits.data(), static_cast<unsigned>(waits.size()), timeout_ms, &ready);
  curl_multi_perform(multi_, &running);
  collect();
  run_posted();
}

int Transfers::collect() {
  int ended = 0;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode result = msg->data.result;
    curl_multi_remove_handle(multi_, easy);
    auto node = done_.extract(easy);
    if (!node.empty()) {
      try {
        node.mapped().done(result, easy);
      } catch (...) {
        curl_easy_cleanup(easy);
        throw;
      }
    }
    curl_easy_cleanup(easy);
    ++ended;
  }
  return ended;
}

}  // namespace nudge
