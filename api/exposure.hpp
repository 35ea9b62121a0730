#pragma once
// The secure default: nudge-api serves without tokens only where nothing but this machine can
// reach it. (A loopback address is not a boundary when a proxy on the same machine forwards to
// it: that is why auth defaults to "token" everywhere; see README, Security.)

#include <optional>
#include <string>

#include "nudge/config.hpp"

namespace nudge::api {

// 127.0.0.0/8, ::1 (also IPv4-mapped) or "localhost".
bool loopback_host(const std::string& host);

// Why nudge-api must not start with these settings (auth "off" on an address other machines
// can reach), and what to do instead; nullopt when it may.
std::optional<std::string> exposure_problem(const ApiConfig& api);

}  // namespace nudge::api
