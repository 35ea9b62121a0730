#include "upload_slots.hpp"

namespace nudge::api {

std::shared_ptr<void> UploadSlots::take(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (const auto it = held_.find(key); it != held_.end() && it->second >= per_key_) return nullptr;
  ++held_[key];
  // The handle points at this object only to be non-null; dropping it gives the slot back.
  return std::shared_ptr<void>(this, [this, key](void*) {
    std::lock_guard lock(mutex_);
    if (const auto it = held_.find(key); it != held_.end() && --it->second == 0) held_.erase(it);
  });
}

}  // namespace nudge::api
