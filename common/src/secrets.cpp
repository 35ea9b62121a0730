#include "nudge/secrets.hpp"

#include <algorithm>
#include <optional>
#include <utility>

namespace nudge {
namespace {

// Standard base64 (RFC 4648 section 4, padding optional) decoded, when it is that and decodes
// to printable ASCII; nothing otherwise.
std::optional<std::string> printable_base64(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() < 4 || text.size() % 4 == 1) return std::nullopt;
  std::string out;
  unsigned bits = 0;
  int held = 0;
  for (const char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '+') v = 62;
    if (c == '/') v = 63;
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(v);
    held += 6;
    if (held >= 8) {
      held -= 8;
      const char byte = static_cast<char>((bits >> held) & 0xff);
      if (byte < 0x20 || byte > 0x7e) return std::nullopt;
      out += byte;
    }
  }
  return out;
}

}  // namespace

std::string mask_secrets(std::string_view text, const std::vector<std::string>& secrets) {
  // Every occurrence is found in the original text, so a mask never hides another secret from
  // the search and a secret that overlaps another is hidden whole.
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // [begin, end) of each occurrence
  for (const std::string& secret : secrets) {
    if (secret.size() < kMinSecretBytes) continue;
    for (auto pos = text.find(secret); pos != std::string_view::npos;
         pos = text.find(secret, pos + 1))
      spans.emplace_back(pos, pos + secret.size());
  }
  std::sort(spans.begin(), spans.end());

  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;  // text before this offset is in `out` already
  for (std::size_t k = 0; k < spans.size();) {
    const std::size_t begin = spans[k].first;
    std::size_t end = spans[k].second;
    for (++k; k < spans.size() && spans[k].first < end; ++k) end = std::max(end, spans[k].second);
    out.append(text.substr(copied, begin - copied));
    out += "***";
    copied = end;
  }
  out.append(text.substr(copied));
  return out;
}

std::vector<std::string> echoable_forms(const std::string& secret) {
  std::vector<std::string> forms{secret};
  if (const auto text = printable_base64(secret)) {
    forms.push_back(*text);
    if (const auto colon = text->find(':'); colon != std::string::npos)
      forms.push_back(text->substr(colon + 1));
  }
  return forms;
}

std::vector<std::string> userinfo_echoes(const std::string& user, const std::string& password) {
  if (user.empty() && password.empty()) return {};
  std::vector<std::string> echoes{base64_encode(user + ":" + password)};
  if (!user.empty()) echoes.push_back(user);
  if (!password.empty()) echoes.push_back(password);
  return echoes;
}

std::vector<std::string> escaped_forms(const std::string& value) {
  std::vector<std::string> forms;
  std::string json;
  std::string percent;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : value) {
    json += c == '/' ? std::string("\\/") : std::string(1, c);
    const auto byte = static_cast<unsigned char>(c);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      percent += c;
    } else {
      percent += '%';
      percent += kHex[byte >> 4];
      percent += kHex[byte & 0xF];
    }
  }
  if (json != value) forms.push_back(std::move(json));
  if (percent != value) forms.push_back(std::move(percent));
  return forms;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve(4 * ((bytes.size() + 2) / 3));
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    unsigned bits = 0;
    for (std::size_t k = 0; k < 3; ++k)
      bits = (bits << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k)
      out += k <= n ? kDigits[(bits >> (18 - 6 * k)) & 0x3F] : '=';
  }
  return out;
}

}  // namespace nudge
