#pragma once
// A channel delivers one fire and says how it went. Deliveries run concurrently: start() begins
// one and its `done` callback reports the outcome later (at once, for channels that cannot
// block). Adding a channel is adding one file that implements Channel and registering it in
// make_channels().

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "fire.hpp"
#include "nudge/config.hpp"

namespace nudge {

class Transfers;

// How one attempt went.
struct Delivery {
  bool delivered = false;
  std::string error;               // why not, when not delivered; never contains secrets
  std::optional<int> status_code;  // HTTP status or SMTP reply code, when there was one
  std::string response;            // start of the response body or reply text (truncated)
  // Whether the attempt tells of the receiver, so that its host's circuit breaker counts it:
  // not when it ended before a connection was tried (a request that cannot be sent, an address
  // the SSRF guard refuses), nor when it timed out while this worker was not running.
  bool counts_for_host = true;
  // A 429 or 503's Retry-After, in seconds: the next attempt waits at least that long.
  std::optional<int> retry_after_seconds = std::nullopt;
  // A refusal that trying again cannot change (an SMTP 5xx): the occurrence ends failed now.
  bool final = false;
  // Webhook: the host could not be reached (its name does not resolve, the connection was
  // refused or not made in time): the request never left, so the try uses none of the
  // occurrence's attempts while its free tries last, as a 429 does (explore31a F1: a receiver
  // away for a few seconds failed the reminders due then, long before its breaker could open).
  bool unreachable = false;
  // Email: the relay, not the message, ended the attempt, and did not take the message.
  // `idle_connection`: a connection kept for reuse turned out closed by the relay (its parting
  // 421 read as the answer to the next command); `relay`: the relay cannot be reached (a refused
  // connection, a name that does not resolve, not a word before the timeout, a failed TLS
  // handshake) or refuses this worker (a 421, its greeting, hello, login or sender refused, no
  // STARTTLS or AUTH where smtp_url logs in). Either way the attempt is given back, using none of
  // the occurrence's attempts; `relay` also rests the worker's emails (RelayRest).
  enum class RelayFailure { none, idle_connection, relay };
  RelayFailure relay_failure = RelayFailure::none;
};

// An attempt that ended, for this reason, before any connection was tried.
inline Delivery not_sent(std::string error) {
  return {false, std::move(error), std::nullopt, {}, false};
}

// Whether `delivery` is a try that uses none of `fire`'s attempts: a 429 or an unreachable
// host while the occurrence's free tries last.
inline bool is_free_try(const Fire& fire, const Delivery& delivery) {
  return !delivery.delivered && !delivery.final &&
         (delivery.status_code == 429 || delivery.unreachable) && fire.free_tries_left > 0;
}

// Whether `delivery` ended `fire`'s occurrence failed, as the database's finish decides it: a
// final refusal, or a failure on its last attempt that is not a free try, nor an email's the
// relay failed (given back).
inline bool ends_occurrence_failed(const Fire& fire, const Delivery& delivery) {
  if (delivery.delivered || delivery.relay_failure != Delivery::RelayFailure::none) return false;
  if (delivery.final) return true;
  return fire.attempt >= fire.max_attempts && !is_free_try(fire, delivery);
}

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
// Writes out the log channel's lines delivered so far (each claim turn, and before the exit).
void write_log_lines();
std::unique_ptr<Channel> make_webhook_channel(const WebhookConfig& config, const Secrets& secrets,
                                              Transfers& transfers);
std::unique_ptr<Channel> make_email_channel(const EmailConfig& config, Transfers& transfers);

// Most bytes of a response kept with an attempt.
inline constexpr std::size_t kMaxResponseBytes = 1024;

}  // namespace nudge
