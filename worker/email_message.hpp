#pragma once
// The email sent for a fire, built apart from its transfer (channel_email.cpp) so that what is
// sent can be checked without a server.
//
// The message is 7-bit ASCII throughout: the subject is RFC 2047-encoded when it is not plain
// ASCII and the body is base64, so no byte the payload holds can end a header, start a new one
// or end the SMTP DATA. Addresses are checked before anything is built or sent.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "fire.hpp"
#include "nudge/email_address.hpp"

namespace nudge {

// Printable ASCII only (every other byte becomes '?'), for header values built from database
// text and for server replies shown in errors.
std::string header_safe(std::string_view text);

// The whole message for `fire`, from `from` to `to` (both accepted by email_address_problem),
// dated `now`: headers, then a text/plain body in base64, every line ending in CRLF. Subject and
// body are the payload's "subject" and "body" strings, or describe the fire when it has none.
std::string email_message(const Fire& fire, const std::string& from, const std::string& to,
                          std::chrono::system_clock::time_point now);

}  // namespace nudge
