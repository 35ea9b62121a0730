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

// A chunk's size line (with its extensions) and the trailer section are at most this long.
constexpr std::size_t kMaxChunkLine = 4096;
constexpr std::size_t kMaxTrailerBytes = 65536;

// What the header fields say about the body.
struct BodyHeaders {
  int content_lengths = 0;
  std::optional<std::size_t> content_length;
  int transfer_encodings = 0;
  bool chunked = false;  // the (last) Transfer-Encoding is chunked alone
  bool expect_continue = false;
  std::size_t expect_value_at = 0;  // of the value, in the head
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls `each(line)` for each line of `head` after its request line, without its CRLF, up to the
// blank line ending the head.
template <typename Each>
void for_each_field_line(std::string_view head, Each&& each) {
  const auto request_line_end = head.find(kLineEnd);
  if (request_line_end == std::string_view::npos) return;
  std::string_view fields = head.substr(request_line_end + kLineEnd.size());
  while (!fields.empty()) {
    const auto eol = fields.find(kLineEnd);
    const std::string_view line = fields.substr(0, eol);
    if (line.empty()) return;
    fields.remove_prefix(eol == std::string_view::npos ? fields.size() : eol + kLineEnd.size());
    each(line);
  }
}

// Calls `each(name, line)` for each header field line of `head` (after its request line), the
// line without its CRLF.
template <typename Each>
void for_each_field(std::string_view head, Each&& each) {
  for_each_field_line(head, [&each](std::string_view line) {
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) each(line.substr(0, colon), line);
  });
}

// A line feed in `head` that does not end a CRLF.
bool has_bare_lf(std::string_view head) {
  for (auto lf = head.find('\n'); lf != std::string_view::npos; lf = head.find('\n', lf + 1)) {
    if (lf == 0 || head[lf - 1] != '\r') return true;
  }
  return false;
}

// A header line of `head` with no colon, an empty name, or white space in or after its name (a
// folded line included).
bool has_unreadable_field(std::string_view head) {
  bool unreadable = false;
  for_each_field_line(head, [&unreadable](std::string_view line) {
    const auto colon = line.find(':');
    unreadable = unreadable || colon == 0 || colon == std::string_view::npos ||
                 line.substr(0, colon).find_first_of(" \t") != std::string_view::npos;
  });
  return unreadable;
}

BodyHeaders read_body_headers(std::string_view head) {
  BodyHeaders out;
  for_each_field(head, [&out, head](std::string_view name, std::string_view line) {
    const std::string_view value = trim(line.substr(name.size() + 1));
    if (same_name(name, "Content-Length")) {
      ++out.content_lengths;
      out.content_length = parse_content_length(value);
    } else if (same_name(name, "Transfer-Encoding")) {
      ++out.transfer_encodings;
      out.chunked = is_token(value, "chunked");
    } else if (same_name(name, "Expect")) {
      out.expect_continue = same_name(value, kExpectContinue);
      out.expect_value_at = static_cast<std::size_t>(value.data() - head.data());
    }
  });
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
  // What is here of the head: a bare LF is refused as soon as it comes.
  const std::string_view head =
      bytes.substr(0, blank == std::string_view::npos ? kMaxHeadBytes : blank + kHeadEnd.size());
  if (has_bare_lf(head) || (blank != std::string_view::npos && has_unreadable_field(head))) {
    f.ready = f.close_after = f.head_malformed = true;
    return f;
  }
  if (blank == std::string_view::npos || blank + kHeadEnd.size() > kMaxHeadBytes) {
    // httplib would read on and parse whatever followed, without a limit.
    f.ready = f.close_after = f.head_too_large = bytes.size() >= kMaxHeadBytes;
    return f;
  }
  f.head_size = blank + kHeadEnd.size();
  BodyHeaders h = read_body_headers(bytes.substr(0, f.head_size));
  if (h.expect_continue) {
    const std::string_view request_line = head.substr(0, head.find(kLineEnd));
    const bool http10 =
        request_line.size() >= 9 && request_line.substr(request_line.size() - 9) == " HTTP/1.0";
    const std::string_view as_sent = head.substr(h.expect_value_at, kExpectContinue.size());
    if (as_sent != (http10 ? kExpectIgnored : kExpectContinue))
      f.expect_value_at = h.expect_value_at;
    h.expect_continue = !http10;
  }
  f.expect_continue = h.expect_continue;
  if (h.transfer_encodings > 0) {
    f.ready = true;
    // Anything but one "chunked" without Content-Length is refused (request_head.hpp) and the
    // connection closed (RFC 9112 section 6.1): httplib would read such a body until the client
    // closes, without a limit.
    f.chunked = h.transfer_encodings == 1 && h.chunked && h.content_lengths == 0;
    f.close_after = !f.chunked;
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

bool is_token(std::string_view value, std::string_view token) {
  return same_name(trim(value), token);
}

ChunkDecoder::State ChunkDecoder::state() const {
  if (step_ == Step::done) return State::done;
  if (step_ == Step::malformed) return State::malformed;
  return State::more;
}

std::size_t ChunkDecoder::feed(std::string_view bytes, std::string* data) {
  std::size_t i = 0;
  const auto fail = [&] {
    step_ = Step::malformed;
    return i;
  };
  while (i < bytes.size()) {
    const char c = bytes[i];
    switch (step_) {
      case Step::size:
        if (const int digit = hex_digit(c); digit >= 0) {
          // 15 hex digits are far past any body allowed; more could overflow.
          if (++digits_ > 15) return fail();
          chunk_ = chunk_ * 16 + static_cast<std::uint64_t>(digit);
        } else if (digits_ > 0 && (c == ';' || c == ' ' || c == '\t')) {
          step_ = Step::extension;  // chunk extensions are read and ignored
        } else if (digits_ > 0 && c == '\r') {
          step_ = Step::size_end;
        } else {
          return fail();
        }
        break;
      case Step::extension:
        if (c == '\r') {
          step_ = Step::size_end;
        } else if (c == '\n') {
          return fail();
        }
        break;
      case Step::size_end:
        if (c != '\n') return fail();
        step_ = chunk_ == 0 ? Step::trailer : Step::data;
        line_ = 0;
        break;
      case Step::data: {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk_, bytes.size() - i));
        if (data != nullptr) data->append(bytes.data() + i, n);
        data_size_ += n;
        chunk_ -= n;
        i += n;
        if (chunk_ == 0) step_ = Step::data_end;
        continue;
      }
      case Step::data_end:
        if (c != '\r') return fail();
        step_ = Step::data_end_lf;
        break;
      case Step::data_end_lf:
        if (c != '\n') return fail();
        step_ = Step::size;
        digits_ = 0;
        break;
      case Step::trailer:  // at the start of a trailer line, or of the empty line ending the body
        if (c == '\n') return fail();
        step_ = c == '\r' ? Step::last_lf : Step::trailer_line;
        break;
      case Step::trailer_line:
        if (c == '\r') {
          step_ = Step::trailer_lf;
        } else if (c == '\n') {
          return fail();
        }
        break;
      case Step::trailer_lf:
        if (c != '\n') return fail();
        step_ = Step::trailer;
        break;
      case Step::last_lf:
        if (c != '\n') return fail();
        step_ = Step::done;
        return i + 1;
      case Step::done:
      case Step::malformed:
        return i;
    }
    ++i;
    // The size line and the trailer section are bounded: neither can grow without end.
    if (step_ == Step::extension || step_ == Step::trailer_line) {
      if (++line_ > (step_ == Step::extension ? kMaxChunkLine : kMaxTrailerBytes)) return fail();
    }
  }
  return i;
}

}  // namespace nudge::api
