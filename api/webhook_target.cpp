#include "webhook_target.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "errors.hpp"
#include "nudge/secret_placeholders.hpp"
#include "nudge/url_host.hpp"
#include "request_input.hpp"

namespace nudge::api {
namespace {

bool holds_webhook_url(const std::string& value) {
  const auto scheme_is = [&](const std::string& scheme) {
    return value.size() > scheme.size() &&
           std::equal(scheme.begin(), scheme.end(), value.begin(), [](char a, char b) {
             return a == std::tolower(static_cast<unsigned char>(b));
           });
  };
  return (scheme_is("http://") || scheme_is("https://")) && url_host(value).has_value();
}

}  // namespace

void check_webhook_target(const std::string& field, const std::string& url, const Secrets& secrets,
                          const AddressGuard& guard) {
  if (const auto secret = secret_address_name(url)) {
    check_secret_known(field, *secret, secrets);
    if (!holds_webhook_url(secrets.at(*secret).value))
      throw bad_field(field, "invalid_value",
                      "{{secret." + *secret +
                          "}} does not hold an http(s) URL in nudge-api's [secrets]: a secret "
                          "standing for a target must (one holding a header's token cannot)");
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

std::string webhook_secret_names(const Secrets& secrets) {
  std::string names = ",";
  for (const auto& [name, secret] : secrets)
    if (holds_webhook_url(secret.value)) names += name + ",";
  return names;
}

}  // namespace nudge::api
