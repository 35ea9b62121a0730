#pragma once
// The API token format, after GitHub's: "nudge_", 30 random base62 characters, and 6 base62
// characters of the CRC-32 of those 30. The prefix lets secret scanners find a leaked token; the
// checksum lets the API refuse a mistyped or made-up token without asking the database. Only
// the token's SHA-256 is stored.

#include <cstdint>
#include <string>
#include <string_view>

namespace nudge::api {

inline constexpr std::string_view kTokenPrefix = "nudge_";
inline constexpr std::size_t kTokenRandomChars = 30;
inline constexpr std::size_t kTokenChecksumChars = 6;
inline constexpr std::size_t kTokenChars =
    kTokenPrefix.size() + kTokenRandomChars + kTokenChecksumChars;

// A new token from the operating system's random source (OpenSSL RAND_bytes, each character
// uniformly one of 62). Throws std::runtime_error when no random bytes can be had.
std::string new_token();

// The prefix, the length, the alphabet and the checksum are right. Says nothing about whether
// the token exists.
bool well_formed_token(std::string_view token);

// CRC-32 (IEEE 802.3, as zlib computes it) of `bytes`.
std::uint32_t crc32(std::string_view bytes);

// A token's name: 1 to 100 letters, digits, dots, dashes or underscores, beginning with a letter
// or digit (the rule of nudge.api_tokens, checked here to refuse bad arguments early).
bool valid_token_name(std::string_view name);

// The SHA-256 of the token, as 64 lower-case hex digits: how tokens are stored and looked up.
std::string token_hash_hex(std::string_view token);

}  // namespace nudge::api
