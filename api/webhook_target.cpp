#include "webhook_target.hpp"

#include <optional>

#include "errors.hpp"
#include "nudge/secret_placeholders.hpp"
#include "nudge/url_host.hpp"
#include "request_input.hpp"

namespace nudge::api {

void check_webhook_target(const std::string& field, const std::string& url, const Secrets& secrets,
                          const AddressGuard& guard) {
  if (const auto secret = secret_address_name(url)) {
    check_secret_known(field, *secret, secrets);
    return;
  }
  const auto host = url_host(url);
  if (!host) return;
  if (const auto refusal = guard.literal_refusal(*host))
    throw bad_field(field, "invalid_value", ssrf_refused(*refusal));
}

void check_rule_target(const nlohmann::json& action, const Secrets& secrets,
                       const AddressGuard& guard) {
  if (!action.is_object() || !action.contains("reminder")) return;
  const nlohmann::json& reminder = action["reminder"];
  if (!reminder.is_object() || reminder.value("channel", nlohmann::json()) != "webhook") return;
  const auto target = reminder.find("target");
  if (target == reminder.end() || !target->is_string()) return;
  check_webhook_target("action.reminder.target", target->get<std::string>(), secrets, guard);
}

}  // namespace nudge::api
