#pragma once
// Secrets never reach a log or an error: text that may echo one is masked before it is shown.
// Every masker in Nudge (database URLs, webhook URLs, the SMTP URL) goes through this one.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace nudge {

// Secrets shorter than this are left alone: masking every "ab" would garble the text and
// protect nothing.
inline constexpr std::size_t kMinSecretBytes = 3;

// `text` with every occurrence of every secret replaced by "***". Occurrences that overlap
// (a password inside its URL) become one "***", so the longest secret wins and no part of any
// shows. Empty secrets and those shorter than kMinSecretBytes are ignored.
std::string mask_secrets(std::string_view text, const std::vector<std::string>& secrets);

// What a receiver may echo of a secret sent in a header: the secret, and when it is base64 of
// printable text (Basic auth's "user:password"), that text and what follows its first colon.
std::vector<std::string> echoable_forms(const std::string& secret);

// What a receiver may echo of a URL's user and password as libcurl sends them: each, and the
// Basic credential, base64 of "user:password" (explore29a #2: an echo of it was stored whole).
std::vector<std::string> userinfo_echoes(const std::string& user, const std::string& password);

// `value` as an answer may escape it: with JSON's "\/" for "/", and percent-encoded (every byte
// but A-Z a-z 0-9 - . _ ~); only the forms that differ from it.
std::vector<std::string> escaped_forms(const std::string& value);

// Standard base64 (RFC 4648, padded).
std::string base64_encode(std::string_view bytes);

}  // namespace nudge
