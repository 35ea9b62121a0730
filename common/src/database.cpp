#include "nudge/database.hpp"

#include <algorithm>
#include <cctype>

namespace nudge {

namespace {

// key=value form: mask the value of every password=... (quoted or not).
std::string redact_keyword_passwords(std::string text) {
  static const std::string kKey = "password";
  for (auto pos = text.find(kKey); pos != std::string::npos; pos = text.find(kKey, pos + 1)) {
    auto eq = pos + kKey.size();
    while (eq < text.size() && std::isspace(static_cast<unsigned char>(text[eq]))) ++eq;
    if (eq >= text.size() || text[eq] != '=') continue;
    auto start = eq + 1;
    while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
    auto end = start;
    if (end < text.size() && text[end] == '\'') {
      end = text.find('\'', end + 1);
      end = end == std::string::npos ? text.size() : end + 1;
    } else {
      while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) &&
             text[end] != '&')
        ++end;
    }
    text.replace(start, end - start, "***");
  }
  return text;
}

}  // namespace

std::unique_ptr<pqxx::connection> open_connection(const std::string& url,
                                                  const std::string& application_name) {
  auto conn = std::make_unique<pqxx::connection>(url);
  pqxx::nontransaction tx(*conn);
  tx.exec("SET TIME ZONE 'UTC'; SET application_name = " + tx.quote(application_name));
  return conn;
}

std::string redact_url(const std::string& url) {
  // scheme://user:password@host → scheme://user:***@host
  std::string out = url;
  const auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    const auto authority = scheme + 3;
    const auto at = out.find('@', authority);
    const auto slash = out.find('/', authority);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const auto colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  return redact_keyword_passwords(out);
}

std::string redact(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos))
    text.replace(pos, secret.size(), "***");
  // An error may quote the password alone (or a URL rebuilt around it): mask that too.
  const std::string masked = redact_url(secret);
  if (masked != secret) {
    const auto diff = std::mismatch(secret.begin(), secret.end(), masked.begin()).first;
    const auto start = static_cast<std::size_t>(diff - secret.begin());
    const auto tail = masked.size() - start - 3;  // what follows "***" in the masked text
    const std::string password = secret.substr(start, secret.size() - start - tail);
    if (password.size() >= 3) text = redact(std::move(text), password);
  }
  return text;
}

}  // namespace nudge
