// The `log` channel: one JSON line per fire on stdout.

#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "channel.hpp"
#include "nudge/clock.hpp"
#include "nudge/log.hpp"

namespace nudge {

namespace {

// The lines not yet written, of every claim loop. They go out whole lines at a time, one
// write(2) each: the worker's own log records go to stderr, which run.sh sends to the same
// file, and stdio's buffer, written out when full, cut a fire's line in two around them
// (explore16b #2).
std::mutex g_mutex;
std::string g_lines;
constexpr std::size_t kWriteAt = 64 * 1024;

void write_lines_locked() {
  std::size_t done = 0;
  while (done < g_lines.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, g_lines.data() + done, g_lines.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log::warn("could not write log-channel lines to stdout",
                {{"bytes", static_cast<long long>(g_lines.size() - done)}});
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  g_lines.clear();
}

class LogChannel final : public Channel {
 public:
  void start(const Fire& fire, DeliveryDone done) override { done(deliver(fire)); }

 private:
  static Delivery deliver(const Fire& fire) {
    nlohmann::json line = {{"reminder_id", fire.id},
                           {"entity_type", fire.entity_type},
                           {"entity_id", fire.entity_id},
                           {"event_type", fire.event_type},
                           {"scheduled_for", rfc3339_from_pg(fire.scheduled_for)},
                           {"fired_at", utc_now_rfc3339()},
                           {"attempt", fire.attempt},
                           {"idempotency_key", fire.idempotency_key()}};
    if (fire.target) line["target"] = *fire.target;
    // The payload is already JSON text from the database: splice it in rather than re-parse it.
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text.pop_back();
    text += ",\"payload\":";
    text += fire.payload_json;
    text += "}\n";
    std::lock_guard lock(g_mutex);
    g_lines += text;
    if (g_lines.size() >= kWriteAt) write_lines_locked();
    return {true, {}, std::nullopt, {}};
  }
};

}  // namespace

void write_log_lines() {
  std::lock_guard lock(g_mutex);
  if (!g_lines.empty()) write_lines_locked();
}

std::unique_ptr<Channel> make_log_channel() {
  return std::make_unique<LogChannel>();
}

}  // namespace nudge
