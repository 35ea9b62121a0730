#pragma once
// Request threads a kind of request may hold: at most `per_key` for one key (a token), `total`
// for all keys together; past either, the caller answers 429, so the other threads always serve.
// Two kinds: requests whose bodies are still arriving (a body not all in when its head is read
// holds a thread until it is: 16 slow uploads stopped /livez for 24 s a round), and batches and
// bulk changes (one token's 1,000-event batches, 1.6 s each, took every thread and stalled
// another token's creates for 10 s within its rate limit: explore21a #1).

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nudge::api {

class KeyedSlots {
 public:
  KeyedSlots(int per_key, int total) : per_key_(per_key), total_(total) {}

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
