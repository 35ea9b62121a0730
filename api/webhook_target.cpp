#include "webhook_target.hpp"

#include <curl/curl.h>

#include <memory>
#include <optional>

#include "errors.hpp"
#include "nudge/secret_placeholders.hpp"
#include "request_input.hpp"

namespace nudge::api {
namespace {

struct UrlFree {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

// The host of `url` as libcurl will connect to it: it reads 127.1, 0x7f000001 and 2130706433 as
// 127.0.0.1, so reading the host any other way would let those through.
std::optional<std::string> host_of(const std::string& url) {
  const std::unique_ptr<CURLU, UrlFree> parsed(curl_url());
  if (!parsed ||
      curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
    return std::nullopt;
  char* host = nullptr;
  if (curl_url_get(parsed.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK) return std::nullopt;
  std::string out = host;
  curl_free(host);
  return out;
}

}  // namespace

void check_webhook_target(const std::string& field, const std::string& url, const Secrets& secrets,
                          const AddressGuard& guard) {
  if (const auto secret = secret_address_name(url)) {
    check_secret_known(field, *secret, secrets);
    return;
  }
  const auto host = host_of(url);
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
