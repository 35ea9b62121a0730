#pragma once
// A fixed-size pool of database connections shared by threads. Connections open lazily and are
// replaced after they break, so a database restart costs the requests in flight, nothing more.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace nudge {

// No connection came free in time: the pool is saturated (an answer of "try again").
class PoolTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ConnectionPool {
 public:
  // Runs once on every new connection (prepared statements, session settings).
  using Setup = std::function<void(pqxx::connection&)>;

  ConnectionPool(std::string url, int size, std::string application_name, Setup setup);
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A connection with what its holders last set on its session, which lives and dies with it.
  struct Pooled {
    std::unique_ptr<pqxx::connection> conn;
    std::string memo;
    std::unique_ptr<pqxx::errorhandler> warnings;  // log_database_warnings, gone before conn
  };

  // One connection, held until destroyed. Call discard() when it may be broken.
  class Lease {
   public:
    Lease(ConnectionPool& pool, Pooled pooled) : pool_(&pool), pooled_(std::move(pooled)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), pooled_(std::move(other.pooled_)) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();
    pqxx::connection& operator*() const { return *pooled_.conn; }
    pqxx::connection* operator->() const { return pooled_.conn.get(); }
    void discard() {
      pooled_.warnings.reset();
      pooled_.conn.reset();
    }
    // What the holder last set on this connection's session (settings it compares before
    // setting them again); empty on a new connection.
    std::string& session_memo() { return pooled_.memo; }

   private:
    ConnectionPool* pool_;
    Pooled pooled_;
  };

  // Waits up to `timeout` for a free slot; throws PoolTimeout when none comes free, or
  // pqxx::broken_connection when a new connection cannot be opened.
  Lease acquire(std::chrono::milliseconds timeout);

  int size() const { return size_; }
  // Connections handed out (or being opened) right now.
  int in_use();

 private:
  void give_back(Pooled pooled);

  std::string url_;
  std::string application_name_;
  Setup setup_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<Pooled> idle_;
  const int size_;
  int free_slots_;  // connections that may still be opened or handed out
};

}  // namespace nudge
