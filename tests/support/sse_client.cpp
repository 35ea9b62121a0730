#include "support/sse_client.hpp"

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace nudge::test {

using Clock = std::chrono::steady_clock;

SseClient::SseClient(int port, const std::string& target, const std::string& extra_headers,
                     int receive_buffer_bytes)
    : connection_(port, receive_buffer_bytes) {
  const auto head = connection_.request(
      raw_request("GET", target, std::nullopt, "Accept: text/event-stream\r\n" + extra_headers),
      std::chrono::seconds(10));
  if (head) answer_ = *head;
  if (!head || answer_.status != 200) ended_ = true;
}

void SseClient::decode_chunks() {
  std::size_t at = 0;
  for (;;) {
    const auto eol = raw_.find("\r\n", at);
    if (eol == std::string::npos) break;
    const std::size_t size = std::strtoul(raw_.c_str() + at, nullptr, 16);
    if (raw_.size() < eol + 2 + size + 2) break;
    if (size == 0) {
      ended_ = true;
      raw_.clear();
      return;
    }
    body_.append(raw_, eol + 2, size);
    at = eol + 2 + size + 2;
  }
  // What was decoded goes at once, not a chunk at a time: erasing each chunk from the front
  // moved the rest of the buffer once per chunk.
  raw_.erase(0, at);
}

std::optional<SseMessage> SseClient::next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto end = body_.find("\n\n", body_at_);
    if (end != std::string::npos) {
      SseMessage m;
      std::size_t at = body_at_;
      while (at < end) {
        const std::size_t eol = body_.find('\n', at);
        const std::string_view line(body_.data() + at, eol - at);
        at = eol + 1;
        const auto colon = line.find(':');
        const std::string_view name = line.substr(0, colon);
        std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (name.empty()) m.comment = value;
        if (name == "id") m.id = value;
        if (name == "event") m.event = value;
        if (name == "data") m.data += value;
      }
      body_at_ = end + 2;
      // Read messages are dropped once they are most of the buffer, not one by one.
      if (body_at_ > body_.size() / 2) {
        body_.erase(0, body_at_);
        body_at_ = 0;
      }
      // "retry: 1000" alone is a setting, not a message.
      if (m.id.empty() && m.event.empty() && m.data.empty() && m.comment.empty()) continue;
      return m;
    }
    if (ended_) return std::nullopt;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    const std::string more = connection_.read_some(left);
    if (more.empty()) {
      if (connection_.closed()) ended_ = true;
      if (Clock::now() >= deadline) return std::nullopt;
      continue;
    }
    raw_ += more;
    decode_chunks();
  }
}

bool SseClient::discard(std::chrono::milliseconds timeout) {
  static constexpr std::string_view kLagged = "\nevent: lagged\n";
  const std::string more = connection_.read_some(timeout);
  if (more.empty()) {
    if (connection_.closed()) ended_ = true;
    return false;
  }
  const bool lagged = (tail_ + more.substr(0, kLagged.size())).find(kLagged) != std::string::npos ||
                      more.find(kLagged) != std::string::npos;
  tail_ = more.substr(more.size() - std::min(more.size(), kLagged.size() - 1));
  return lagged;
}

std::optional<SseMessage> SseClient::next_event(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto m = next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!m || !m->event.empty()) return m;
    if (Clock::now() >= deadline) return std::nullopt;
  }
}

}  // namespace nudge::test
