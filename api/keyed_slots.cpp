#include "keyed_slots.hpp"

namespace nudge::api {

std::shared_ptr<void> KeyedSlots::take(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (held_total_ >= total_) return nullptr;
  if (const auto it = held_.find(key); it != held_.end() && it->second >= per_key_) return nullptr;
  ++held_[key];
  ++held_total_;
  // The handle points at this object only to be non-null; dropping it gives the slot back.
  return std::shared_ptr<void>(this, [this, key](void*) {
    std::lock_guard lock(mutex_);
    --held_total_;
    if (const auto it = held_.find(key); it != held_.end() && --it->second == 0) held_.erase(it);
  });
}

bool KeyedSlots::all_taken() {
  std::lock_guard lock(mutex_);
  return held_total_ >= total_;
}

}  // namespace nudge::api
