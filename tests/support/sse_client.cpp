#include "support/sse_client.hpp"

#include <cstdlib>

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
  for (;;) {
    const auto eol = raw_.find("\r\n");
    if (eol == std::string::npos) return;
    const std::size_t size = std::strtoul(raw_.c_str(), nullptr, 16);
    if (raw_.size() < eol + 2 + size + 2) return;
    if (size == 0) {
      ended_ = true;
      raw_.clear();
      return;
    }
    body_.append(raw_, eol + 2, size);
    raw_.erase(0, eol + 2 + size + 2);
  }
}

std::optional<SseMessage> SseClient::next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto end = body_.find("\n\n");
    if (end != std::string::npos) {
      SseMessage m;
      std::size_t at = 0;
      while (at < end) {
        const std::size_t eol = body_.find('\n', at);
        const std::string line = body_.substr(at, eol - at);
        at = eol + 1;
        const auto colon = line.find(':');
        const std::string name = line.substr(0, colon);
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.erase(0, 1);
        if (name.empty()) m.comment = value;
        if (name == "id") m.id = value;
        if (name == "event") m.event = value;
        if (name == "data") m.data += value;
      }
      body_.erase(0, end + 2);
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

std::optional<SseMessage> SseClient::next_event(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto m = next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!m || !m->event.empty()) return m;
    if (Clock::now() >= deadline) return std::nullopt;
  }
}

}  // namespace nudge::test
