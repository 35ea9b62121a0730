#pragma once
// The connection settings Nudge adds to a database URL that does not set them itself, so that a
// server that vanished without closing its connections (a failover, a dropped network, a host
// that went away) is an error in seconds rather than a connection that waits for ever.

#include <string>

namespace nudge {

// `url` (postgresql:// or libpq key=value) with each of these that it does not set added:
// connect_timeout=10 (seconds), keepalives=1, keepalives_idle=15, keepalives_interval=5,
// keepalives_count=3 (an idle connection whose server stopped answering ends within ~30 s),
// tcp_user_timeout=30000 (ms: data the server has not acknowledged for 30 s ends it).
// connect_timeout is left to PGCONNECT_TIMEOUT when that is set.
std::string with_connection_defaults(const std::string& url);

}  // namespace nudge
