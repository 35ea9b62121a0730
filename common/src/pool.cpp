#include "nudge/pool.hpp"

#include <poll.h>

#include "nudge/database.hpp"

namespace nudge {

namespace {

// Whether the server closed an idle connection (a restart, an idle timeout): its socket then
// reads as closed at once, with no round trip. Handing it out would fail the request it serves.
bool closed_by_server(pqxx::connection& conn) {
  // A server that shuts down says why first ("terminating connection due to administrator
  // command"), which reading takes as a notice: the end comes with the next read.
  for (int reads = 0; reads < 4; ++reads) {
    pollfd fd{conn.sock(), POLLIN | POLLRDHUP, 0};
    if (fd.fd < 0) return true;
    if (::poll(&fd, 1, 0) <= 0) return false;
    try {
      conn.get_notifs();  // reads what came (nothing is expected while idle) or the end
    } catch (const pqxx::broken_connection&) {
      return true;
    }
    if (!conn.is_open()) return true;
  }
  return false;
}

}  // namespace

ConnectionPool::ConnectionPool(std::string url, int size, std::string application_name, Setup setup)
    : url_(std::move(url)),
      application_name_(std::move(application_name)),
      setup_(std::move(setup)),
      size_(size),
      free_slots_(size) {}

int ConnectionPool::in_use() {
  std::lock_guard lock(mutex_);
  return size_ - free_slots_;
}

ConnectionPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->give_back(std::move(pooled_));
}

ConnectionPool::Lease ConnectionPool::acquire(std::chrono::milliseconds timeout) {
  Pooled pooled;
  {
    std::unique_lock lock(mutex_);
    if (!freed_.wait_for(lock, timeout, [&] { return free_slots_ > 0; })) {
      throw PoolTimeout("all database connections are busy");
    }
    --free_slots_;
    if (!idle_.empty()) {
      pooled = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (pooled.conn && pooled.conn->is_open() && !closed_by_server(*pooled.conn))
    return Lease(*this, std::move(pooled));
  // Opening happens outside the lock; a failure gives the slot back.
  try {
    pooled.warnings.reset();
    pooled = Pooled{open_connection(url_, application_name_), "", nullptr};
    pooled.warnings = log_database_warnings(*pooled.conn);
    if (setup_) setup_(*pooled.conn);
  } catch (...) {
    give_back(Pooled{});
    throw;
  }
  return Lease(*this, std::move(pooled));
}

void ConnectionPool::give_back(Pooled pooled) {
  {
    std::lock_guard lock(mutex_);
    ++free_slots_;
    if (pooled.conn && pooled.conn->is_open()) idle_.push_back(std::move(pooled));
  }
  freed_.notify_one();
}

}  // namespace nudge
