#include "token.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>

namespace nudge::api {
namespace {

constexpr std::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

std::string base62_checksum(std::string_view random_part) {
  std::uint32_t value = crc32(random_part);
  std::string out(kTokenChecksumChars, '0');  // 62^6 > 2^32: six digits hold any CRC-32
  for (std::size_t i = kTokenChecksumChars; i-- > 0 && value > 0; value /= 62)
    out[i] = kBase62[value % 62];
  return out;
}

}  // namespace

std::uint32_t crc32(std::string_view bytes) {
  static constexpr auto kTable = [] {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int bit = 0; bit < 8; ++bit) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
      table[i] = c;
    }
    return table;
  }();
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char c : bytes)
    crc = (crc >> 8) ^ kTable[(crc ^ static_cast<unsigned char>(c)) & 0xFFu];
  return ~crc;
}

std::string new_token() {
  std::string random_part;
  random_part.reserve(kTokenRandomChars);
  while (random_part.size() < kTokenRandomChars) {
    std::array<unsigned char, 64> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
      throw std::runtime_error("no random bytes to make a token from");
    for (const unsigned char b : bytes) {
      // 248 = 4 * 62: bytes above it are dropped, so that b % 62 favours no character.
      if (b < 248 && random_part.size() < kTokenRandomChars) random_part += kBase62[b % 62];
    }
  }
  return std::string(kTokenPrefix) + random_part + base62_checksum(random_part);
}

bool well_formed_token(std::string_view token) {
  if (token.size() != kTokenChars || !token.starts_with(kTokenPrefix)) return false;
  const std::string_view body = token.substr(kTokenPrefix.size());
  if (body.find_first_not_of(kBase62) != std::string_view::npos) return false;
  const std::string_view random_part = body.substr(0, kTokenRandomChars);
  return body.substr(kTokenRandomChars) == base62_checksum(random_part);
}

bool valid_token_name(std::string_view name) {
  const auto word = [](char c) { return kBase62.find(c) != std::string_view::npos; };
  if (name.empty() || name.size() > 100 || !word(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return word(c) || c == '.' || c == '-' || c == '_'; });
}

std::string token_hash_hex(std::string_view token) {
  // Fetched once, and one context per thread: OpenSSL 3 looks an algorithm up (under a lock) at
  // every EVP_Digest(EVP_sha256()), which cost more than the hash.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(),
                                                                            &EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (kSha256 == nullptr || !ctx || EVP_DigestInit_ex(ctx.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), token.data(), token.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &size) != 1)
    throw std::runtime_error("SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

}  // namespace nudge::api
