#include "email_message.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "nudge/secrets.hpp"
#include "nudge/utf8.hpp"

namespace nudge {

namespace {

// A text/plain body in canonical form (every line break CRLF), base64 in lines of 76.
std::string base64_body(std::string_view text) {
  std::string canonical;
  canonical.reserve(text.size() + text.size() / 16);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      canonical += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (text[i] == '\n') {
      canonical += "\r\n";
    } else {
      canonical += text[i];
    }
  }
  const std::string encoded = base64_encode(canonical);
  std::string out;
  out.reserve(encoded.size() + encoded.size() / 38 + 2);
  for (std::size_t i = 0; i < encoded.size(); i += 76) {
    out.append(encoded, i, 76);
    out += "\r\n";
  }
  return out;
}

// The length of the control character or Unicode line break (UTF-8: C1 controls, U+0085 among
// them, and U+2028, U+2029) starting text[i]; 0 when there is none.
std::size_t control_at(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) {
    return k < text.size() ? static_cast<unsigned char>(text[k]) : 0u;
  };
  if (byte(i) < 0x20 || byte(i) == 0x7f) return 1;
  if (byte(i) == 0xc2 && byte(i + 1) >= 0x80 && byte(i + 1) <= 0x9f) return 2;
  if (byte(i) == 0xe2 && byte(i + 1) == 0x80 && (byte(i + 2) == 0xa8 || byte(i + 2) == 0xa9))
    return 3;
  return 0;
}

// One line of header text: line breaks (Unicode's too), tabs and other control characters
// become spaces, runs of white space become one, and the ends are trimmed.
std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (std::size_t i = 0; i < text.size();) {
    if (const std::size_t n = text[i] == ' ' ? 1 : control_at(text, i); n > 0) {
      space = true;
      i += n;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += text[i++];
  }
  return out;
}

// `Subject: ...` with its CRLF, from text already made one line: plain ASCII folded at spaces
// to lines of at most 78 characters, anything else as RFC 2047 encoded words (UTF-8, base64) of
// at most 76 characters a line, never splitting a character.
std::string subject_header(const std::string& subject) {
  static constexpr std::string_view kName = "Subject: ";
  const bool plain =
      std::all_of(subject.begin(), subject.end(), [](char c) { return c >= 0x20 && c != 0x7f; }) &&
      subject.find("=?") == std::string::npos && subject.size() <= 900;
  std::string out(kName);
  if (plain) {
    std::size_t line_start = 0;
    std::size_t min_break = kName.size();  // a break must leave text on the line before it
    for (const char c : subject) {
      out += c;
      if (out.size() - line_start <= 78) continue;
      const auto space = out.rfind(' ');
      if (space == std::string::npos || space <= line_start + min_break) continue;
      out.insert(space, "\r\n");
      line_start = space + 2;
      min_break = 1;
    }
    return out + "\r\n";
  }
  // Encoded words: "=?UTF-8?B?" + base64 + "?=". The first shares its line with the name.
  std::size_t budget = 39;  // bytes of text: 9 + 12 + 52 <= 76
  std::size_t i = 0;
  bool first = true;
  while (i < subject.size()) {
    // Never split a character; always take at least a byte, so invalid text still ends.
    const std::size_t end =
        i + std::max<std::size_t>(1, utf8::cut(std::string_view(subject).substr(i), budget).size());
    if (!first) out += "\r\n ";
    out += "=?UTF-8?B?" + base64_encode(std::string_view(subject).substr(i, end - i)) + "?=";
    i = end;
    first = false;
    budget = 45;  // " " + 12 + 60 <= 76
  }
  return out + "\r\n";
}

// The idempotency key as the left part of a Message-ID (RFC 5322 dot-atom-text): the colons
// of the time go (ISO 8601 basic format); anything else outside atext becomes '_'. The right
// part is the sender's domain, so two installations (ids restart at 1) do not collide.
std::string message_id(const std::string& key, const std::string& from) {
  static constexpr std::string_view kAtextSpecials = "!#$%&'*+-/=?^_`{|}~";
  std::string out;
  for (const char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ':') continue;
    if (c == '.') {
      out += out.empty() || out.back() == '.' ? '_' : '.';
    } else if (u < 0x80 && (std::isalnum(u) || kAtextSpecials.find(c) != std::string_view::npos)) {
      out += c;
    } else {
      out += '_';
    }
  }
  if (out.empty()) out = "_";
  if (out.back() == '.') out.back() = '_';
  const auto at = from.rfind('@');
  const std::string domain = at == std::string::npos ? "nudge" : from.substr(at + 1);
  return "<" + out + "@" + domain + ">";
}

// `time` as an RFC 5322 date-time in UTC, in English whatever the locale.
std::string rfc5322_date(std::chrono::system_clock::time_point time) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string default_subject(const Fire& fire) {
  return "Reminder: " + fire.event_type + " for " + fire.entity_type + " " + fire.entity_id;
}

std::string default_body(const Fire& fire, const std::string& key, const nlohmann::json& payload) {
  std::string text = default_subject(fire) + "\n\n";
  text += "Scheduled for: " + rfc3339_from_pg(fire.scheduled_for) + "\n";
  text += "Attempt: " + std::to_string(fire.attempt);
  if (fire.max_attempts > 0) text += " of " + std::to_string(fire.max_attempts);
  text += "\nReminder id: " + std::to_string(fire.id) + "\n";
  text += "Idempotency key: " + key + "\n\nPayload:\n";
  text += payload.is_discarded()
              ? fire.payload_json
              : payload.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  text += "\n";
  return text;
}

}  // namespace

std::string header_safe(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) c = '?';
  }
  return out;
}

std::string email_message(const Fire& fire, const std::string& from, const std::string& to,
                          std::chrono::system_clock::time_point now) {
  const std::string key = fire.idempotency_key();
  nlohmann::json payload = nlohmann::json::parse(fire.payload_json, nullptr, false);
  std::optional<std::string> subject;
  std::optional<std::string> body;
  if (payload.is_object()) {
    if (const auto it = payload.find("subject"); it != payload.end() && it->is_string())
      subject = it->get<std::string>();
    if (const auto it = payload.find("body"); it != payload.end() && it->is_string())
      body = it->get<std::string>();
  }

  std::string text;
  text += "Date: " + rfc5322_date(now) + "\r\n";
  text += "From: " + from + "\r\n";
  text += "To: " + to + "\r\n";
  // A blank subject says nothing in an inbox (explore30a F8): the default says what it is.
  std::string line = subject ? one_line(*subject) : std::string();
  if (line.empty()) line = one_line(default_subject(fire));
  text += subject_header(line);
  text += "Message-ID: " + message_id(key, from) + "\r\n";
  text += "MIME-Version: 1.0\r\n";
  text += "Content-Type: text/plain; charset=utf-8\r\n";
  text += "Content-Transfer-Encoding: base64\r\n";
  text += "Auto-Submitted: auto-generated\r\n";  // RFC 3834: no vacation replies, please
  text += "X-Nudge-Reminder-Id: " + std::to_string(fire.id) + "\r\n";
  text += "X-Nudge-Attempt: " + std::to_string(fire.attempt) + "\r\n";
  text += "Idempotency-Key: " + header_safe(key) + "\r\n";
  text += "\r\n";
  text += base64_body(body ? *body : default_body(fire, key, payload));
  return text;
}

}  // namespace nudge
