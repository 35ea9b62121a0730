#include "token_watch.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "statements.hpp"

namespace nudge::api {
namespace {

constexpr const char* kChannel = "nudge_tokens";
constexpr auto kRecordUsesEvery = std::chrono::milliseconds(1000);
constexpr auto kFirstRetry = std::chrono::milliseconds(100);
constexpr auto kLongestRetry = std::chrono::milliseconds(5000);

}  // namespace

class TokenWatch::Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, TokenCache& cache)
      : pqxx::notification_receiver(conn, kChannel), cache_(cache) {}
  void operator()(const std::string& name, int) override {
    cache_.clear();
    log::info("a token was revoked or changed: verified tokens forgotten", {{"token", name}});
  }

 private:
  TokenCache& cache_;
};

TokenWatch::TokenWatch(std::string url, std::string application_name, TokenCache& cache)
    : url_(std::move(url)),
      application_name_(std::move(application_name)),
      cache_(cache),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  thread_ = std::thread([this] { run(); });
}

TokenWatch::~TokenWatch() {
  stopping_ = true;
  const std::uint64_t one = 1;
  const auto written = ::write(stop_fd_, &one, sizeof one);  // if it fails: seen within a second
  (void)written;
  thread_.join();
  disconnect();
  ::close(stop_fd_);
}

void TokenWatch::run() {
  auto retry = kFirstRetry;
  while (!stopping_) {
    try {
      if (!conn_) connect();
      retry = kFirstRetry;
      conn_->get_notifs();
      record_uses();
      wait(conn_->sock(), kRecordUsesEvery);
    } catch (const std::exception& e) {
      // Revocations may go unheard until the connection is back: forget every verified token
      // at each attempt, so none outlives a revocation by more than the retry interval.
      disconnect();
      cache_.clear();
      log::warn("cannot listen for revoked tokens; retrying",
                {{"error", database_error(e, url_)}, {"retry_ms", retry.count()}});
      wait(-1, retry);
      retry = std::min(retry * 2, kLongestRetry);
    }
  }
}

void TokenWatch::connect() {
  conn_ = open_connection(url_, application_name_);
  set_up_token_connection(*conn_);
  receiver_ = std::make_unique<Receiver>(*conn_, cache_);  // LISTEN
  // Whatever was revoked while nobody listened.
  cache_.clear();
}

void TokenWatch::disconnect() {
  try {
    receiver_.reset();  // before its connection; UNLISTEN fails on a broken one
  } catch (...) {
  }
  conn_.reset();
}

void TokenWatch::record_uses() {
  const auto used = cache_.take_used();
  if (used.empty()) return;
  std::string hashes = "{";  // hex digits only: a text[] literal needs no quoting
  for (const auto& hash : used) hashes += (hashes.size() > 1 ? "," : "") + hash;
  hashes += "}";
  pqxx::nontransaction(*conn_).exec_prepared("tokens_used", hashes);
}

void TokenWatch::wait(int fd, std::chrono::milliseconds timeout) const {
  pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
  ::poll(fds, fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
}

}  // namespace nudge::api
