#include "transfers.hpp"

#include <stdexcept>

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

Transfers::Transfers() {
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

void Transfers::abort_all() {
  while (!done_.empty()) {
    auto node = done_.extract(done_.begin());
    CURL* easy = node.key();
    // Removing a running SMTP transfer makes libcurl finish the conversation politely (end of
    // data, wait for the reply) for up to the transfer's timeout; a 1 ms timeout cuts that short.
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 1L);
    curl_multi_remove_handle(multi_, easy);
    try {
      node.mapped()(CURLE_ABORTED_BY_CALLBACK, easy);
    } catch (...) {
      curl_easy_cleanup(easy);
      throw;
    }
    curl_easy_cleanup(easy);
  }
}

void Transfers::add(CURL* easy, std::function<void(CURLcode, CURL*)> done) {
  const CURLMcode rc = curl_multi_add_handle(multi_, easy);
  if (rc != CURLM_OK) {
    curl_easy_cleanup(easy);
    throw std::runtime_error(std::string("libcurl: ") + curl_multi_strerror(rc));
  }
  done_.emplace(easy, std::move(done));
}

void Transfers::run(int timeout_ms, const std::vector<int>& extra_fds) {
  int running = 0;
  curl_multi_perform(multi_, &running);
  if (collect() > 0) return;
  std::vector<curl_waitfd> waits;
  waits.reserve(extra_fds.size());
  for (const int fd : extra_fds) waits.push_back({fd, CURL_WAIT_POLLIN, 0});
  int ready = 0;
  curl_multi_poll(multi_, waits.data(), static_cast<unsigned>(waits.size()), timeout_ms, &ready);
  curl_multi_perform(multi_, &running);
  collect();
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
        node.mapped()(result, easy);
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
