#include "support/test_database.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <thread>

namespace nudge::test {

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

std::string template_name() {
  return env_or("NUDGE_TEST_TEMPLATE", "nudge_template");
}

std::string unique_name() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return "nudge_t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(rd() % 100000);
}

}  // namespace

std::string admin_url() {
  return env_or("NUDGE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:55433/postgres");
}

std::string with_database(const std::string& url, const std::string& dbname) {
  const auto query = url.find('?');
  const std::string base = url.substr(0, query);
  const std::string rest = query == std::string::npos ? "" : url.substr(query);
  const auto scheme_end = base.find("://");
  const auto slash = base.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  const std::string host_part = slash == std::string::npos ? base : base.substr(0, slash);
  return host_part + "/" + dbname + rest;
}

TestDatabase::TestDatabase(Start start)
    : name_(unique_name()), url_(with_database(admin_url(), name_)) {
  const std::string from = start == Start::migrated ? template_name() : "template0";
  pqxx::connection admin(admin_url());
  pqxx::nontransaction tx(admin);
  // CREATE DATABASE fails while another session is connected to the template; retry briefly.
  for (int attempt = 0;; ++attempt) {
    try {
      tx.exec("CREATE DATABASE " + tx.quote_name(name_) + " TEMPLATE " + tx.quote_name(from));
      return;
    } catch (const pqxx::sql_error& e) {
      if (attempt >= 50 || e.sqlstate() != "55006") throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(admin_url());
    pqxx::nontransaction tx(admin);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception&) {
    // A leftover test database is harmless: the throwaway cluster is wiped on the next run.
  }
}

bool wait_until(std::chrono::milliseconds timeout, const std::function<bool()>& done,
                std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace nudge::test
