#include "notifier.hpp"

#include <chrono>

#include "nudge/database.hpp"
#include "nudge/log.hpp"

namespace nudge::api {

Notifier::Notifier(std::string url, std::string application_name)
    : url_(std::move(url)), application_name_(std::move(application_name)) {
  thread_ = std::thread([this] { run(); });
}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void Notifier::poke() {
  {
    std::lock_guard lock(mutex_);
    if (pending_) return;
    pending_ = true;
  }
  cv_.notify_one();
}

void Notifier::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return pending_ || stopping_; });
    if (!pending_ && stopping_) return;
    // Everything poked until now is committed: one notification covers it all.
    pending_ = false;
    lock.unlock();
    send();
    lock.lock();
  }
}

void Notifier::send() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (!conn_) conn_ = open_connection(url_, application_name_);
      pqxx::nontransaction(*conn_).exec("SELECT pg_notify('nudge_due', '')");
      return;
    } catch (const std::exception& e) {
      // A lost hint only delays a fire until the workers' own wake-up; say so and retry once.
      conn_.reset();
      log::warn("could not wake the workers", {{"error", database_error(e, url_)}});
    }
  }
}

}  // namespace nudge::api
