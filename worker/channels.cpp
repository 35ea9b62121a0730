#include "channel.hpp"

namespace nudge {

Channels make_channels(const Config& config, Transfers& transfers) {
  Channels channels;
  channels.emplace("log", make_log_channel());
  channels.emplace("webhook", make_webhook_channel(config.webhook, config.secrets, transfers));
  channels.emplace("email", make_email_channel(config.email, transfers));
  return channels;
}

}  // namespace nudge
