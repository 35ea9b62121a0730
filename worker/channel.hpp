#pragma once
// A channel delivers one fire and says how it went. Adding a channel is adding one file that
// implements Channel and registering it in make_channels().

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace nudge {

// One occurrence of one reminder, as claimed from the database.
struct Fire {
  std::int64_t id = 0;
  std::string entity_type;
  std::string entity_id;
  std::string event_type;
  std::string channel;
  std::optional<std::string> target;
  std::string payload_json;  // a JSON object, as stored
  std::string schedule_type;
  std::string scheduled_for;  // exactly as the database returned it: the occurrence's identity
  int attempt = 0;            // claims of this occurrence so far, this one included
  int fire_count = 0;         // occurrences recorded before this one

  // Stable per reminder and occurrence: the same on a retry or a re-delivery after a crash.
  std::string idempotency_key() const;
};

struct Delivery {
  bool delivered = false;
  std::string error;  // why not, when not delivered; never contains secrets
};

class Channel {
 public:
  virtual ~Channel() = default;
  virtual Delivery deliver(const Fire& fire) = 0;
};

using Channels = std::map<std::string, std::unique_ptr<Channel>>;

// The channels this build can deliver through, by name.
Channels make_channels();

// `2026-11-22 09:00:00.5+00` (PostgreSQL, UTC session) → `2026-11-22T09:00:00.5Z` (RFC 3339).
std::string rfc3339_from_pg(const std::string& pg_timestamp);

}  // namespace nudge
