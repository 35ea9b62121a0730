#include "token_watch.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "statements.hpp"

namespace nudge::api {
namespace {

constexpr const char* kChannel = "nudge_tokens";
constexpr auto kRecordUsesEvery = std::chrono::milliseconds(1000);
constexpr auto kFirstRetry = std::chrono::milliseconds(100);
constexpr auto kLongestRetry = std::chrono::milliseconds(5000);

// Token hashes as a text[] literal: hex digits only, so it needs no quoting.
std::string hash_array(const std::vector<std::string>& hashes) {
  std::string out = "{";
  for (const auto& hash : hashes) out += (out.size() > 1 ? "," : "") + hash;
  return out + "}";
}

}  // namespace

class TokenWatch::Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, TokenCache& cache, bool& changed)
      : pqxx::notification_receiver(conn, kChannel), cache_(cache), changed_(changed) {}
  void operator()(const std::string& name, int) override {
    cache_.clear();
    changed_ = true;  // the streams are checked once get_notifs() returns
    log::info("a token was revoked or changed: verified tokens forgotten", {{"token", name}});
  }

 private:
  TokenCache& cache_;
  bool& changed_;
};

TokenWatch::TokenWatch(std::string url, std::string application_name, TokenCache& cache,
                       StreamHub& hub, std::chrono::seconds recheck)
    : url_(std::move(url)),
      application_name_(std::move(application_name)),
      cache_(cache),
      hub_(hub),
      recheck_(recheck),
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
      if (std::exchange(changed_, false) || std::chrono::steady_clock::now() - checked_ >= recheck_)
        check_streams();
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
  receiver_ = std::make_unique<Receiver>(*conn_, cache_, changed_);  // LISTEN
  // Whatever was revoked while nobody listened.
  cache_.clear();
  changed_ = true;
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
  pqxx::nontransaction(*conn_).exec_prepared("tokens_used", hash_array(used));
}

void TokenWatch::check_streams() {
  checked_ = std::chrono::steady_clock::now();
  const auto held = hub_.stream_tokens();
  if (held.empty()) return;
  const auto rows =
      pqxx::nontransaction(*conn_).exec_prepared("tokens_without_read", hash_array(held));
  if (rows.empty()) return;
  std::vector<std::string> refused;
  for (const auto& row : rows) refused.push_back(row[0].c_str());
  const std::size_t ended = hub_.end_streams_of(refused);
  log::info("streams of tokens that no longer grant read ended", {{"streams", ended}});
}

void TokenWatch::wait(int fd, std::chrono::milliseconds timeout) const {
  pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
  ::poll(fds, fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
}

}  // namespace nudge::api
