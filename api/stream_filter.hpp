#pragma once
// Which changes a stream client asked for: GET /v1/stream's reminder_id, entity_type, entity_id
// and types. A reminder_id passes only that reminder's changes; an entity passes the changes of
// reminders and events about it (flags and rules belong to no entity); types passes the kinds
// named. Filters combine with AND.

#include <httplib.h>

#include <cstdint>
#include <optional>
#include <string>

#include "stream_changes.hpp"

namespace nudge::api {

struct StreamFilter {
  std::optional<std::int64_t> reminder_id;
  std::optional<std::string> entity_type, entity_id;
  unsigned kinds = ~0u;  // bit per kind, in the order reminder, flag, event, rule

  bool matches(const Change& change) const;
};

// The filter of a stream request; 400 naming the parameter when one is bad.
StreamFilter parse_stream_filter(const httplib::Request& req);

}  // namespace nudge::api
