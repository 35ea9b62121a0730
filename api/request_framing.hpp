#pragma once
// Where one HTTP/1.1 request ends in the bytes received so far (RFC 9112 section 6.3), found
// before httplib parses it, so that a request thread is only given a request it can serve
// without waiting for the client.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nudge::api {

struct RequestFraming {
  // The request can be served now: head and body are here, or the body is to be read as it
  // comes (chunked, Expect: 100-continue, larger than allowed, or its first kMaxEarlyBodyBytes
  // are here), or the head is too long.
  bool ready = false;
  // No blank line within kMaxHeadBytes: the request is refused (431) without being parsed.
  bool head_too_large = false;
  // A line of the head ending in a bare LF, or a header line that is not a name, a colon and a
  // value (RFC 9112 sections 2.2 and 5): refused (400) without being parsed. httplib skipped
  // such a header line, and waited out the deadline for a head of bare LFs.
  bool head_malformed = false;
  std::size_t head_size = 0;             // through the blank line; 0 while the head is incomplete
  std::optional<std::size_t> body_size;  // from Content-Length; 0 when the request has no body
  // Neither Content-Length nor Transfer-Encoding: the body is empty (section 6.3, rule 7).
  bool lacks_length = false;
  // A head too long or malformed, a Content-Length unreadable, or a Transfer-Encoding other than
  // chunked alone: where the next request starts is unknown.
  bool close_after = false;
  // Transfer-Encoding: chunked (and no Content-Length): the connection decodes the body, up to
  // max_body_bytes, once httplib has read the head (Connection::read_chunked_body).
  bool chunked = false;
  bool expect_continue = false;  // Expect: 100-continue (any case), asked over HTTP/1.1
  // Where its value is in the head, when httplib would misread it: in another case (it answers
  // the exact "100-continue" only) or over HTTP/1.0, whose expectation a server must ignore (RFC
  // 9110 section 10.1.1). The connection rewrites it in place (Connection::begin_request).
  std::optional<std::size_t> expect_value_at;
};

// What the Expect value at RequestFraming::expect_value_at becomes: what httplib answers with a
// 100, or, over HTTP/1.0, what it ignores.
inline constexpr std::string_view kExpectContinue = "100-continue";
inline constexpr std::string_view kExpectIgnored = "100-CONTINUE";

inline constexpr std::size_t kMaxHeadBytes = 65536;
// Of a longer body, this much is gathered before the request is served and the rest is read as
// it comes: so that a slow client does not make the server buffer whole bodies meanwhile.
inline constexpr std::size_t kMaxEarlyBodyBytes = 65536;

// A Content-Length value: digits only, within size_t; nullopt otherwise (a sign, anything else,
// an overflow).
std::optional<std::size_t> parse_content_length(std::string_view text);

// Frames the request at the start of `bytes` (leading empty lines already skipped).
RequestFraming frame_request(std::string_view bytes, std::size_t max_body_bytes);

// A header field's `value` is `token` (in any case, spaces and tabs around it ignored). The only
// Transfer-Encoding the API reads is "chunked" alone (RFC 9112 section 6.1: chunked must be the
// last coding, and the API decodes no other).
bool is_token(std::string_view value, std::string_view token);

// A chunked body (RFC 9112 section 7.1) decoded as its bytes arrive: the data of its chunks,
// without their sizes, extensions or trailer fields.
class ChunkDecoder {
 public:
  enum class State { more, done, malformed };

  // Decodes `bytes` from where the last call stopped, adding the data to `data` (or dropping it
  // when null). Answers how many of `bytes` it used: all of them unless the body ended, or
  // turned out malformed, before their end.
  std::size_t feed(std::string_view bytes, std::string* data);
  State state() const;
  std::uint64_t data_size() const { return data_size_; }

 private:
  enum class Step {
    size,
    extension,
    size_end,
    data,
    data_end,
    data_end_lf,
    trailer,
    trailer_line,
    trailer_lf,
    last_lf,
    done,
    malformed
  };
  Step step_ = Step::size;
  std::uint64_t chunk_ = 0;  // the size of the chunk being read, then what is left of it
  std::size_t digits_ = 0;   // of its size
  std::size_t line_ = 0;     // bytes of the size line or trailer section so far
  std::uint64_t data_size_ = 0;
};

}  // namespace nudge::api
