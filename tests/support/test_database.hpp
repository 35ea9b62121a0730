#pragma once
// Each test gets its own database, cloned from the migrated template that scripts/test.sh makes.
// NUDGE_TEST_ADMIN_URL points at the server's maintenance database; NUDGE_TEST_TEMPLATE names
// the template.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <pqxx/pqxx>
#include <string>

namespace nudge::test {

// The URL of the maintenance database of the test server.
std::string admin_url();

// `url` with its database name replaced by `dbname`.
std::string with_database(const std::string& url, const std::string& dbname);

// A fresh database for one test; dropped (forcibly) when it goes out of scope.
class TestDatabase {
 public:
  // migrated: a clone of the migrated template; empty: a database without Nudge (template0).
  enum class Start { migrated, empty };
  explicit TestDatabase(Start start = Start::migrated);
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }

 private:
  std::string name_;
  std::string url_;
};

// Polls `done` until it returns true or `timeout` passes; returns the last answer.
bool wait_until(std::chrono::milliseconds timeout, const std::function<bool()>& done,
                std::chrono::milliseconds interval = std::chrono::milliseconds(20));

// Base fixture: a fresh database and one open connection to it.
class DatabaseTest : public ::testing::Test {
 protected:
  TestDatabase db_;
  pqxx::connection conn_{db_.url()};

  // Runs one statement in its own transaction and returns its rows.
  template <typename... Args>
  pqxx::result sql(const std::string& query, Args&&... args) {
    pqxx::work tx(conn_);
    pqxx::result r = tx.exec_params(query, std::forward<Args>(args)...);
    tx.commit();
    return r;
  }

  // The single value of a one-row, one-column query.
  template <typename T, typename... Args>
  T value(const std::string& query, Args&&... args) {
    return sql(query, std::forward<Args>(args)...).at(0).at(0).template as<T>();
  }
};

}  // namespace nudge::test
