#pragma once
// The Nudge-Signature header of webhook requests (see README, "Verifying webhooks").

#include <cstdint>
#include <string>

namespace nudge {

// "t=<unix seconds>,v1=<lower-case hex HMAC-SHA256(secret, "<t>.<body>")>".
std::string webhook_signature(const std::string& secret, std::int64_t unix_seconds,
                              const std::string& body);

}  // namespace nudge
