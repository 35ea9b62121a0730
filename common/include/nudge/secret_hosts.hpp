#pragma once
// Where a secret may be sent in a header ([secret_hosts]): to a host one of its patterns names
// whole, or, for "*.example.com", to any name under example.com. A secret with none goes in no
// header: it can only stand for a whole webhook URL, whose value says where it goes.

#include <optional>
#include <string>

#include "nudge/config.hpp"

namespace nudge {

// Why `pattern` (lower case) cannot be one of a secret's hosts; nullopt when it can.
std::optional<std::string> secret_host_problem(const std::string& pattern);

// Whether a header may send `secret` to `host` (as url_host reads it: any case, a trailing dot).
bool secret_may_go_to(const Secret& secret, std::string host);

// Why a header may not send secret `name` to `host`, and which setting would let it. Never holds
// the secret's value.
std::string secret_host_refusal(const std::string& name, const std::string& host);

}  // namespace nudge
