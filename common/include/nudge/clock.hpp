#pragma once
// Wall-clock time as text. Deciding when work is due uses the database clock, never this.

#include <string>

namespace nudge {

// Now, in UTC, as RFC 3339 with microseconds: 2026-11-22T09:00:00.123456Z
std::string utc_now_rfc3339();

}  // namespace nudge
