#pragma once
// Where one HTTP/1.1 request ends in the bytes received so far (RFC 9112 section 6.3), found
// before httplib parses it, so that a request thread is only given a request it can serve
// without waiting for the client.

#include <cstddef>
#include <optional>
#include <string_view>

namespace nudge::api {

struct RequestFraming {
  // The request can be served now: head and body are here, or the body is to be read as it
  // comes (chunked, Expect: 100-continue, larger than allowed, or its first kMaxEarlyBodyBytes
  // are here), or the head is too long.
  bool ready = false;
  std::size_t head_size = 0;             // through the blank line; 0 while the head is incomplete
  std::optional<std::size_t> body_size;  // from Content-Length; 0 when the request has no body
  // Neither Content-Length nor Transfer-Encoding: the body is empty (section 6.3, rule 7).
  bool lacks_length = false;
  // A head too long or a Content-Length unreadable: where the next request starts is unknown.
  bool close_after = false;
};

inline constexpr std::size_t kMaxHeadBytes = 65536;
// Of a longer body, this much is gathered before the request is served and the rest is read as
// it comes: so that a slow client does not make the server buffer whole bodies meanwhile.
inline constexpr std::size_t kMaxEarlyBodyBytes = 65536;

// A Content-Length value: digits only, within size_t; nullopt otherwise (a sign, anything else,
// an overflow).
std::optional<std::size_t> parse_content_length(std::string_view text);

// Frames the request at the start of `bytes` (leading empty lines already skipped).
RequestFraming frame_request(std::string_view bytes, std::size_t max_body_bytes);

}  // namespace nudge::api
