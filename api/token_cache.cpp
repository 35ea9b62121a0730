#include "token_cache.hpp"

#include <utility>

namespace nudge::api {
namespace {

constexpr auto kUseNotedEvery = std::chrono::minutes(1);

}  // namespace

std::optional<TokenCache::Holder> TokenCache::find(const std::string& hash, Clock::time_point now) {
  std::shared_lock lock(mutex_);
  const auto it = entries_.find(hash);
  if (it == entries_.end() || now - it->second->verified >= ttl_) return std::nullopt;
  note_use(hash, *it->second, now);
  return it->second->holder;
}

void TokenCache::put(const std::string& hash, Holder holder, Clock::time_point now,
                     std::uint64_t generation) {
  auto entry = std::make_unique<Entry>();
  entry->holder = std::move(holder);
  entry->verified = now;
  entry->reported = (now - kUseNotedEvery).time_since_epoch().count();
  std::unique_lock lock(mutex_);
  if (generation != generation_.load()) return;
  note_use(hash, *entry, now);
  entries_[hash] = std::move(entry);
}

void TokenCache::clear() {
  std::unique_lock lock(mutex_);
  ++generation_;
  entries_.clear();
}

std::vector<std::string> TokenCache::take_used() {
  std::lock_guard lock(used_mutex_);
  return std::exchange(used_, {});
}

void TokenCache::note_use(const std::string& hash, Entry& entry, Clock::time_point now) {
  Clock::rep reported = entry.reported.load();
  if (now - Clock::time_point(Clock::duration(reported)) < kUseNotedEvery) return;
  // One thread wins the minute; the others see it taken.
  if (!entry.reported.compare_exchange_strong(reported, now.time_since_epoch().count())) return;
  std::lock_guard lock(used_mutex_);
  used_.push_back(hash);
}

}  // namespace nudge::api
