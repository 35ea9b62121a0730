#pragma once
// Sends the workers' wake-up hint (NOTIFY nudge_due) after API writes commit, many commits to
// one notification. The API's own transactions do not NOTIFY (their sessions set
// nudge.notify_after_commit), because PostgreSQL serialises the commits of notifying
// transactions; see nudge.queue_wake_up() in sql/schema.sql.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>

namespace nudge::api {

class Notifier {
 public:
  Notifier(std::string url, std::string application_name);
  ~Notifier();  // sends what is pending, then stops
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Call after a write that may have made a reminder due sooner has committed.
  void poke();

 private:
  void run();
  void send();

  std::string url_;
  std::string application_name_;
  std::unique_ptr<pqxx::connection> conn_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool pending_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace nudge::api
