#pragma once
// The one check of an email address Nudge sends from or to: the worker's before each message,
// and the configuration's of [email] from at start, so a sender no message could use stops the
// program instead of failing every email.

#include <optional>
#include <string>
#include <string_view>

namespace nudge {

// Why `address` cannot be used as a bare addr-spec in a header and an SMTP command, or nullopt.
// Deliberately strict: dot-atom local parts and host names only (no quoting, no comments, no
// domain literals, no non-ASCII), so nothing it accepts can inject a header or a command.
std::optional<std::string> email_address_problem(std::string_view address);

}  // namespace nudge
