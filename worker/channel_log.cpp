// The `log` channel: one JSON line per fire on stdout.

#include <cstdio>
#include <nlohmann/json.hpp>

#include "channel.hpp"
#include "nudge/clock.hpp"

namespace nudge {

namespace {

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
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size())
      return {false, "could not write to stdout", std::nullopt, {}};
    return {true, {}, std::nullopt, {}};
  }
};

}  // namespace

std::unique_ptr<Channel> make_log_channel() {
  return std::make_unique<LogChannel>();
}

}  // namespace nudge
