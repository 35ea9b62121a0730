#include "request_framing.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace nudge::api {
namespace {

constexpr std::string_view kLineEnd = "\r\n";
constexpr std::string_view kHeadEnd = "\r\n\r\n";

bool same_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// What the header fields say about the body.
struct BodyHeaders {
  int content_lengths = 0;
  std::optional<std::size_t> content_length;
  bool transfer_encoding = false;
  bool expect_continue = false;
};

BodyHeaders read_body_headers(std::string_view fields) {
  BodyHeaders out;
  while (!fields.empty()) {
    const auto eol = fields.find(kLineEnd);
    const std::string_view line = fields.substr(0, eol);
    fields.remove_prefix(eol == std::string_view::npos ? fields.size() : eol + kLineEnd.size());
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (same_name(name, "Content-Length")) {
      ++out.content_lengths;
      out.content_length = parse_content_length(value);
    } else if (same_name(name, "Transfer-Encoding")) {
      out.transfer_encoding = true;
    } else if (same_name(name, "Expect")) {
      out.expect_continue = same_name(value, "100-continue");
    }
  }
  return out;
}

}  // namespace

std::optional<std::size_t> parse_content_length(std::string_view text) {
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return n;
}

RequestFraming frame_request(std::string_view bytes, std::size_t max_body_bytes) {
  RequestFraming f;
  const auto blank = bytes.find(kHeadEnd);
  if (blank == std::string_view::npos || blank + kHeadEnd.size() > kMaxHeadBytes) {
    // httplib answers a head it cannot finish reading with 400 (or 414 for a long target).
    f.ready = f.close_after = bytes.size() >= kMaxHeadBytes;
    return f;
  }
  f.head_size = blank + kHeadEnd.size();
  const auto request_line_end = bytes.find(kLineEnd);
  // The header lines, each with its CRLF (none when the request line ends the head).
  const BodyHeaders h =
      read_body_headers(bytes.substr(request_line_end + kLineEnd.size(), blank - request_line_end));
  if (h.transfer_encoding) {
    f.ready = true;  // httplib reads a chunked body to its end; what follows is the next request
    return f;
  }
  if (h.content_lengths == 0) {
    f.lacks_length = f.ready = true;
    f.body_size = 0;
    return f;
  }
  if (h.content_lengths > 1 || !h.content_length) {
    f.ready = f.close_after = true;
    return f;
  }
  f.body_size = *h.content_length;
  f.ready = h.expect_continue || *f.body_size > max_body_bytes ||
            bytes.size() - f.head_size >= std::min(*f.body_size, kMaxEarlyBodyBytes);
  return f;
}

}  // namespace nudge::api
