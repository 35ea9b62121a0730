#pragma once
// Request bodies and query strings, checked field by field before anything reaches the
// database: types, required and unknown fields, lengths and ranges. What passes is handed to the
// lifecycle functions, which apply the same rules again (they are the source of truth).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "errors.hpp"
#include "nudge/address_guard.hpp"
#include "nudge/config.hpp"

namespace nudge::api {

// Limits of the API, stated once.
inline constexpr std::size_t kMaxNameChars = 200;  // entity_type, entity_id, event_type, flag keys
inline constexpr std::size_t kMaxTargetChars = 2048;
// A webhook host as nudge.target_hosts keys it: a URL of kMaxTargetChars with its default port.
inline constexpr std::size_t kMaxHostKeyChars = kMaxTargetChars + 16;
inline constexpr int kMaxIntervalSeconds = 31622400;  // 366 days
inline constexpr std::size_t kMaxBatchItems = 1000;
inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 500;
inline constexpr int kMaxAttempts = 100;  // max_attempts of a reminder: 1..100
// Arrays and objects nest at most this deep in a body (the body itself is the first level).
inline constexpr std::size_t kMaxJsonDepth = 64;
// A time's offset is at most this many hours (and 59 minutes) from UTC: PostgreSQL's limit.
inline constexpr int kMaxOffsetHours = 15;

// Parses a request body as a JSON object; 400 naming `body` otherwise (missing_field when it
// is empty, invalid_json, invalid_type), or naming the path of a key given twice in one object
// (invalid_json) or of an array or object nested deeper than kMaxJsonDepth (invalid_value).
nlohmann::json parse_object(const std::string& body);
// The body of a route that takes none: empty, or `{}` (clients often send one). Anything else is
// a 400 as parse_object gives it, or naming the object's first field (unknown_field).
void check_no_body(const std::string& body);

// A create request, normalised: interval_minutes becomes interval_seconds, times stay as the
// RFC 3339 text the caller sent (PostgreSQL parses it). `prefix` names fields of batch items.
struct CreateInput {
  std::string entity_type, entity_id, event_type, channel, schedule_type;
  std::optional<std::string> run_at, target, stop_condition_type, stop_condition_value, ends_at;
  std::optional<std::string> cron, timezone, misfire_policy;
  std::optional<int> interval_seconds, max_fires, max_attempts;
  nlohmann::json payload = nlohmann::json::object();
  std::optional<nlohmann::json> request;  // a webhook's own request (request_input.hpp)

  // Appends the item as the batch function reads it (a JSON object, nulls left out).
  void append_json(std::string& out) const;
};
// `secrets` are those configured: a request's headers may name no others. A webhook target
// whose host is an address `guard` refuses is a 400 naming it (webhook_target.hpp).
CreateInput parse_create(const nlohmann::json& body, const Secrets& secrets,
                         const AddressGuard& guard, const std::string& prefix = "");

// A reschedule request: what is absent stays as it is; a limit sent as null is removed (JSON
// merge patch).
struct PatchInput {
  std::optional<std::string> run_at, ends_at, cron, timezone;
  std::optional<int> interval_seconds, max_fires;
  std::optional<nlohmann::json> payload;
  std::vector<std::string> clear;    // "max_fires", "ends_at": the limits sent as null
  bool interval_in_minutes = false;  // given as interval_minutes: errors name that field
};
PatchInput parse_patch(const nlohmann::json& body);

// A schedule to preview (POST /v1/schedules/preview): its fields as a create takes them, the
// limits that end it (max_fires, ends_at: said in its sentence, and no fire past them listed),
// plus `from` (default: now) and `count` (1..100, default 5).
struct PreviewInput {
  std::string schedule_type;
  // text_timezone: the zone schedule_text names a one_time or recurring schedule's times in (a
  // cron schedule's text keeps its own zone).
  std::optional<std::string> run_at, cron, timezone, from, ends_at, text_timezone;
  // Said in the sentence only ("until feedback_submitted is true").
  std::optional<std::string> stop_condition_type, stop_condition_value;
  std::optional<int> interval_seconds, max_fires;
  std::string misfire_policy = "fire_once";
  int count = 5;
};
PreviewInput parse_preview(const nlohmann::json& body);

// A phrase to parse (POST /v1/schedules/parse): the text (1..1000 characters), the zone of its
// wall-clock times unless it names one (default UTC), and the time it is read at (default: the
// database's now).
struct WordsInput {
  std::string text;
  std::string timezone = "UTC";
  std::optional<std::string> now;
};
WordsInput parse_words(const nlohmann::json& body);

// The host of POST /v1/targets/close, as GET /v1/targets lists it.
std::string parse_target_host(const nlohmann::json& body);

// The flag value of PUT /v1/flags/{key}.
bool parse_flag_value(const nlohmann::json& body);
void check_flag_key(const std::string& key);

// The address of PUT /v1/contacts/{entity_type}/{entity_id}/{channel}: a string of 1..2048
// characters (whether it suits the channel is checked by nudge.put_contact).
std::string parse_contact_address(const nlohmann::json& body);

// The items of a batch body {"items": [...]}: an array of 1..1000 `what`, and nothing else.
const nlohmann::json& batch_items(const nlohmann::json& body, const std::string& what);

// An event (POST /v1/events, or an item of /v1/events/batch under `prefix`): what happened to
// which entity, its data, an optional idempotency key and when it occurred (default now).
struct EventInput {
  std::string event_type, entity_type, entity_id;
  nlohmann::json data = nlohmann::json::object();
  std::optional<std::string> key, occurred_at;

  // The item as nudge.emit_events reads it (nulls left out).
  nlohmann::json to_json() const;
};
EventInput parse_event(const nlohmann::json& body, const std::string& prefix = "");

// A rule (POST /v1/rules needs name, event_type and action; PATCH takes any of the fields).
// Only the shape is checked here: nudge.check_rule checks the action and conditions in full.
struct RuleInput {
  std::optional<std::string> name, event_type;
  std::optional<bool> enabled;
  std::optional<nlohmann::json> when, action;
};
RuleInput parse_rule(const nlohmann::json& body, bool partial);

// What a bulk pause, resume or cancel (POST /v1/reminders/{pause,resume,cancel}) applies to:
// up to 1,000 ids and/or the filters of the list; at least one of them (400 naming `body`).
struct BulkInput {
  std::optional<std::string> ids;  // as a PostgreSQL array literal, {1,2,3}
  std::optional<std::string> status, entity_type, entity_id, event_type, channel;
};
BulkInput parse_bulk(const nlohmann::json& body);

// A name from a URL path (already percent-decoded): 1..200 characters, 400 naming `field`.
void check_path_name(const std::string& field, const std::string& value);
// The channel of a contact path: webhook or email, 400 naming `channel`.
void check_contact_channel(const std::string& channel);

// An id from a path: digits only, 1 to the largest bigint; nullopt otherwise.
std::optional<std::int64_t> parse_id(const std::string& text);

// RFC 3339 date-time with an explicit offset ("Z" or ±HH:MM, HH at most kMaxOffsetHours),
// fractional seconds allowed.
bool is_rfc3339(const std::string& text);

// limit=1..500 (default 50), 400 naming `limit` otherwise.
int parse_limit(const std::optional<std::string>& text);

// Opaque page cursors: text the server chose, handed back unchanged by the client.
std::string encode_cursor(const std::string& position);
// 400 naming `cursor` when the text is not a cursor this server made.
std::string decode_cursor(const std::string& cursor);
// That 400: "cursor: is not a cursor this server gave".
ApiError not_a_cursor();

}  // namespace nudge::api
