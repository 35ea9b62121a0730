#include "change_poller.hpp"

#include <memory>

#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "statements.hpp"

namespace nudge::api {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Commit-to-message latency is at most this plus a render (the target is 1 s at p99); one
// index probe per interval when nothing changed.
constexpr auto kPollInterval = 100ms;
constexpr auto kRetryInterval = 1s;  // after the database failed
constexpr int kPage = 1000;

}  // namespace

ChangePoller::ChangePoller(std::string url, std::string application_name, StreamHub& hub,
                           std::chrono::milliseconds heartbeat)
    : url_(std::move(url)),
      application_name_(std::move(application_name)),
      hub_(hub),
      heartbeat_(heartbeat) {
  thread_ = std::thread([this] { run(); });
}

ChangePoller::~ChangePoller() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

bool ChangePoller::wait(Clock::time_point until) {
  std::unique_lock lock(mutex_);
  return !cv_.wait_until(lock, until, [this] { return stopping_; });
}

void ChangePoller::read_log(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  const std::int64_t last = advance_batches(tx);
  const Position end = after_batch(last);
  auto at = hub_.position();
  if (at && *at > end) {
    const std::size_t ended = hub_.restart_at(end);
    log::warn("the change log went back: the database was restored or rebuilt",
              {{"from", event_id(*at)}, {"to", event_id(end)}, {"streams_ended", ended}});
    return;
  }
  if (at && *at >= end) return;
  if (!at || hub_.joined() == 0) {
    if (hub_.advance(end)) return;
    at = hub_.position();
  }
  // The database reads the next page while this thread renders and publishes the last: under
  // load each gets only a share of a core, and one waiting for the other halved the pace.
  pqxx::pipeline pages(tx);
  pages.retain(0);
  auto next = pages.insert(changes_query(*at, last, kPage));
  for (;;) {
    const pqxx::result rows = pages.retrieve(next);
    const Position read_to = page_end(rows, last, kPage);
    if (read_to < end) next = pages.insert(changes_query(read_to, last, kPage));
    Page page = render_changes(rows, last, kPage);
    const Position page_end = page.end;
    hub_.publish(std::move(page));
    if (page_end >= end) break;
  }
  pages.complete();
}

void ChangePoller::run() {
  std::unique_ptr<pqxx::connection> conn;
  auto next_ping = Clock::now() + heartbeat_;
  bool failing = false;
  for (;;) {
    auto next_read = Clock::now() + kPollInterval;
    try {
      if (!conn) {
        conn = open_connection(url_, application_name_);
        set_up_connection(*conn);
      }
      read_log(*conn);
      if (failing) {
        log::info("the change log is read again");
        hub_.set_stalled(false);
      }
      failing = false;
    } catch (const std::exception& e) {
      // Clients keep their streams (with heartbeats, told it stalled); the changes wait in the
      // log.
      if (!failing) {
        log::warn("cannot read the change log", {{"error", database_error(e, url_)}});
        hub_.set_stalled(true);
      }
      failing = true;
      conn.reset();
      next_read = Clock::now() + kRetryInterval;
    }
    if (Clock::now() >= next_ping) {
      hub_.ping();
      next_ping = Clock::now() + heartbeat_;
    }
    if (!wait(std::min(next_read, next_ping))) return;
  }
}

}  // namespace nudge::api
