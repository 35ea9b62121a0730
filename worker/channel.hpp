#pragma once
// A channel delivers one fire and says how it went. Deliveries run concurrently: start() begins
// one and its `done` callback reports the outcome later (at once, for channels that cannot
// block). Adding a channel is adding one file that implements Channel and registering it in
// make_channels().

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "nudge/config.hpp"

namespace nudge {

class Transfers;

// One occurrence of one reminder, as claimed from the database.
struct Fire {
  std::int64_t id = 0;
  std::string entity_type;
  std::string entity_id;
  std::string event_type;
  std::string channel;
  // Where to deliver: the reminder's target or, when it has none, the address of its entity in
  // the contacts table at claim time; nullopt when neither exists.
  std::optional<std::string> target;
  std::string payload_json;  // a JSON object, as stored
  std::string schedule_type;
  std::string scheduled_for;  // exactly as the database returned it: the occurrence's identity
  int attempt = 0;            // attempts at this occurrence so far, this one included
  int max_attempts = 0;       // attempts this occurrence gets in all
  int fire_count = 0;         // occurrences recorded before this one

  // Stable per reminder and occurrence: the same on a retry or a re-delivery after a crash.
  std::string idempotency_key() const;
};

// How one attempt went.
struct Delivery {
  bool delivered = false;
  std::string error;               // why not, when not delivered; never contains secrets
  std::optional<int> status_code;  // HTTP status or SMTP reply code, when there was one
  std::string response;            // start of the response body or reply text (truncated)
};

using DeliveryDone = std::function<void(Delivery)>;

class Channel {
 public:
  virtual ~Channel() = default;
  // Begins delivering `fire`; calls `done` exactly once: at once, or later from
  // Transfers::run() on the same thread. Never throws after it has called `done`.
  virtual void start(const Fire& fire, DeliveryDone done) = 0;
};

using Channels = std::map<std::string, std::unique_ptr<Channel>>;

// The channels this build can deliver through, by name; network channels run their transfers
// on `transfers`, which must outlive them.
Channels make_channels(const Config& config, Transfers& transfers);

// The channels, one file each.
std::unique_ptr<Channel> make_log_channel();
std::unique_ptr<Channel> make_webhook_channel(const WebhookConfig& config, Transfers& transfers);
std::unique_ptr<Channel> make_email_channel(const EmailConfig& config, Transfers& transfers);

// `2026-11-22 09:00:00.5+00` (PostgreSQL, UTC session) → `2026-11-22T09:00:00.5Z` (RFC 3339).
std::string rfc3339_from_pg(const std::string& pg_timestamp);

// Most bytes of a response kept with an attempt.
inline constexpr std::size_t kMaxResponseBytes = 1024;

}  // namespace nudge
