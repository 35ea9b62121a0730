#pragma once
// Request threads that request bodies may hold while they arrive. A body that has not all
// arrived when its head is read holds a request thread until it has (or its deadline passes), so
// without a bound token holders could take every thread with slow uploads (16 of them stopped
// /livez for 24 s a round; two tokens with 8 each, 14.6 s). One token may hold half the threads
// so, and all tokens together half too; past either, a 429: the other half always serves.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nudge::api {

class UploadSlots {
 public:
  UploadSlots(int per_key, int total) : per_key_(per_key), total_(total) {}

  // A slot for `key`, held until the returned handle is dropped; nullptr when `key` holds all of
  // its slots, or all keys together hold `total`.
  std::shared_ptr<void> take(const std::string& key);
  int per_key() const { return per_key_; }
  int total() const { return total_; }
  // Whether all keys together hold `total` (said in a refusal; may change at once).
  bool all_taken();

 private:
  const int per_key_;
  const int total_;
  std::mutex mutex_;
  std::unordered_map<std::string, int> held_;
  int held_total_ = 0;
};

}  // namespace nudge::api
