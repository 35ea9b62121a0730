#pragma once
// A Server-Sent Events client on a raw socket, as a browser's EventSource reads GET /v1/stream:
// the answer's head, then the chunked body split into messages (id, event, data) and comments.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "support/raw_http.hpp"

namespace nudge::test {

struct SseMessage {
  std::string id, event, data;
  std::string comment;  // a comment line's text (": ping" gives "ping"); then no event
  nlohmann::json json() const { return nlohmann::json::parse(data); }
};

class SseClient {
 public:
  // Sends GET `target` with `extra_headers` ("Name: value\r\n" each) and reads the head.
  SseClient(int port, const std::string& target, const std::string& extra_headers = "",
            int receive_buffer_bytes = 0);

  // The answer's status and head (0 when none came); the body when it is not a stream.
  const RawResponse& answer() const { return answer_; }
  // The next message or comment within `timeout` (a retry setting alone is skipped); nullopt on
  // timeout or when the stream ended.
  std::optional<SseMessage> next(std::chrono::milliseconds timeout);
  // The next event (a message with an event name: not a comment, nor the retry setting).
  std::optional<SseMessage> next_event(std::chrono::milliseconds timeout);
  // Reads what arrives within `timeout` and keeps none of it, as a client that only keeps up
  // (nothing decoded: a benchmark's other streams share the server's cores); true when it held a
  // `lagged` event. Not to be mixed with next() on one client.
  bool discard(std::chrono::milliseconds timeout);
  // The server ended the stream (its last chunk, or the connection closed).
  bool ended() const { return ended_; }

 private:
  // Moves whole chunks from raw_ to body_.
  void decode_chunks();

  RawConnection connection_;
  RawResponse answer_;
  std::string raw_, body_;
  std::size_t body_at_ = 0;  // where the unread messages start
  std::string tail_;         // discard()'s last bytes, for an event name split between two reads
  bool ended_ = false;
};

}  // namespace nudge::test
