#pragma once
// Request threads one token may hold while its request bodies arrive. A body that has not all
// arrived when its head is read holds a request thread until it has (or its deadline passes), so
// without a bound one token holder could take every thread with slow uploads (16 of them stopped
// /livez for 24 s a round). A token may hold half the threads so; past that, a 429.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nudge::api {

class UploadSlots {
 public:
  explicit UploadSlots(int per_key) : per_key_(per_key) {}

  // A slot for `key`, held until the returned handle is dropped; nullptr when `key` holds all of
  // its slots.
  std::shared_ptr<void> take(const std::string& key);
  int per_key() const { return per_key_; }

 private:
  const int per_key_;
  std::mutex mutex_;
  std::unordered_map<std::string, int> held_;
};

}  // namespace nudge::api
