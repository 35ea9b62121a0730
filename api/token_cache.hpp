#pragma once
// Tokens verified against the database, by SHA-256, for a short while: a request with a known
// token costs no round trip. An entry lives `ttl`, which bounds how long a token revoked without
// this process hearing of it still gets in; TokenWatch clears the cache as soon as it hears of a
// revoked or changed token, and whenever it may have missed a notification.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "access.hpp"

namespace nudge::api {

class TokenCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Holder {
    std::string name;
    Scopes scopes = 0;
  };

  explicit TokenCache(Clock::duration ttl) : ttl_(ttl) {}

  // The holder of the token with this hash when it was verified less than ttl ago. Notes the use
  // for last_used_at, at most once a minute per token.
  std::optional<Holder> find(const std::string& hash, Clock::time_point now);

  // Call before looking a token up in the database, and pass the answer to put(): a clear() in
  // between (the token may have been revoked since the lookup began) makes put() drop it.
  std::uint64_t generation() const { return generation_.load(); }
  void put(const std::string& hash, Holder holder, Clock::time_point now, std::uint64_t generation);

  // Forgets every token.
  void clear();

  // The hashes of the tokens used since the last call, each at most once a minute.
  std::vector<std::string> take_used();

 private:
  struct Entry {
    Holder holder;
    Clock::time_point verified;
    std::atomic<Clock::rep> reported;  // when its use was last noted
  };
  void note_use(const std::string& hash, Entry& entry, Clock::time_point now);

  const Clock::duration ttl_;
  std::shared_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
  std::atomic<std::uint64_t> generation_{0};
  std::mutex used_mutex_;
  std::vector<std::string> used_;
};

}  // namespace nudge::api
