#pragma once
// What every channel delivers: one occurrence of one reminder, and how its time and its
// idempotency key are written in what leaves the worker.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nudge {

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
  // The attempt number at which a failure ends this occurrence: its attempts, plus the free
  // tries (answered 429, or the host unreachable) that used none.
  int max_attempts = 0;
  int fire_count = 0;  // occurrences recorded before this one
  // A webhook reminder's own request, rendered for this attempt by the claim (JSON: method,
  // headers with {{secret.NAME}} standing, content_type, body, or error); nullopt for none.
  std::optional<std::string> request;
  bool rescued = false;     // the claim took it over from an expired lease (a worker died)
  int free_tries_left = 0;  // how many more 429s or unreachable tries may use no attempt

  // Stable per reminder and occurrence: the same on a retry or a re-delivery after a crash.
  std::string idempotency_key() const;
};

// `2026-11-22 09:00:00.5+00` (PostgreSQL, UTC session) → `2026-11-22T09:00:00.5Z` (RFC 3339).
std::string rfc3339_from_pg(const std::string& pg_timestamp);

// Seconds from `pg_timestamp` (as above) to `now`, negative when it lies ahead; nullopt when it
// is not in that form.
std::optional<double> seconds_since(std::string_view pg_timestamp,
                                    std::chrono::system_clock::time_point now);

}  // namespace nudge
