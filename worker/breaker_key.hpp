#pragma once
// The circuit breaker key of a webhook address, as nudge.target_host writes it: what
// /v1/targets and the breaker's log lines call the host, so that a failed attempt's log line
// can name it too (explore18a #2: the attempt's line had the cause, the breaker's the host).

#include <string>

namespace nudge {

// scheme://host:port in lower case, the port filled in (80, 443), any user:password@, path,
// query and fragment left out; an address that is no URL ({{secret.NAME}}) in lower case, whole.
std::string breaker_key(const std::string& address);

}  // namespace nudge
