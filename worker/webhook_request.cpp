#include "webhook_request.hpp"

#include <nlohmann/json.hpp>
#include <utility>

#include "nudge/secret_hosts.hpp"
#include "nudge/secret_placeholders.hpp"
#include "nudge/secrets.hpp"
#include "nudge/url_host.hpp"

namespace nudge {

namespace {

using nlohmann::json;

// Nudge's own body: the fire as compact JSON, the payload as stored.
std::string default_body(const Fire& fire, const std::string& key) {
  const nlohmann::ordered_json head = {{"reminder_id", fire.id},
                                       {"entity_type", fire.entity_type},
                                       {"entity_id", fire.entity_id},
                                       {"event_type", fire.event_type},
                                       {"scheduled_for", rfc3339_from_pg(fire.scheduled_for)},
                                       {"attempt", fire.attempt},
                                       {"idempotency_key", key}};
  // The payload is already JSON text from the database: splice it in rather than re-parse it.
  std::string text = head.dump(-1, ' ', false, json::error_handler_t::replace);
  text.pop_back();
  text += ",\"payload\":";
  text += fire.payload_json.empty() ? std::string("{}") : fire.payload_json;
  text += '}';
  return text;
}

std::string upper(std::string text) {
  for (char& c : text)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return text;
}

// Why secret `name`, named in `field`, cannot be filled in.
std::string not_configured(const std::string& field, const std::string& name) {
  return field + ": secret \"" + name + "\" is not configured in this worker (set [secrets] " +
         name + " or NUDGE_SECRETS_" + upper(name) + ")";
}

// The fire's address, or the URL a secret keeps when the address is {{secret.NAME}}; false with
// `error` set when this worker lacks the secret. A URL kept in a secret is kept out of errors
// and responses whole, and so is what follows its host (where Slack and its like keep the token).
bool address(const Fire& fire, const Secrets& secrets, WebhookRequest& request) {
  request.url = fire.target.value_or("");
  const auto name = secret_address_name(request.url);
  if (!name) return true;
  const auto it = secrets.find(*name);
  if (it == secrets.end()) {
    request.error = not_configured("target", *name);
    return false;
  }
  request.url = it->second.value;
  request.secrets.push_back(request.url);
  const std::size_t host = request.url.find("://");
  const std::size_t after_host =
      host == std::string::npos ? std::string::npos : request.url.find_first_of("/?#", host + 3);
  if (after_host != std::string::npos && request.url.size() - after_host > 1)
    request.secrets.push_back(request.url.substr(after_host));
  return true;
}

// "Name: value" with every {{secret.NAME}} filled; false with `error` set when it cannot be,
// or when one may not go to `host` ([secret_hosts]: the reminder's creator chose the target).
bool header_line(const std::string& name, const std::string& value, const Secrets& secrets,
                 const std::string& host, WebhookRequest& request) {
  const std::string field = "request.headers." + name;
  std::string problem;
  const auto parts = parse_header_template(value, problem);
  if (!parts) {
    request.error = field + ": " + problem;
    return false;
  }
  std::string filled = parts->texts[0];
  for (std::size_t i = 0; i < parts->secrets.size(); ++i) {
    const std::string& secret = parts->secrets[i];
    const auto it = secrets.find(secret);
    if (it == secrets.end()) {
      request.error = not_configured(field, secret);
      return false;
    }
    if (!secret_may_go_to(it->second, host)) {
      request.error = field + ": " + secret_host_refusal(secret, host);
      return false;
    }
    filled += it->second.value;
    filled += parts->texts[i + 1];
    for (std::string& form : echoable_forms(it->second.value))
      request.secrets.push_back(std::move(form));
  }
  // Checked when stored and when configured; checked again here, where it would matter.
  if (filled.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
    request.error = field + ": holds a line break once its secrets are filled in";
    return false;
  }
  // libcurl drops a header given as "Name:"; "Name;" sends it empty.
  request.headers.push_back(filled.empty() ? name + ";" : name + ": " + filled);
  return true;
}

}  // namespace

WebhookRequest webhook_request(const Fire& fire, const std::string& key, const Secrets& secrets) {
  WebhookRequest request;
  if (!address(fire, secrets, request)) return request;
  if (!fire.request) {
    request.body = default_body(fire, key);
    return request;
  }
  const json own = json::parse(*fire.request, nullptr, /*allow_exceptions=*/false);
  if (!own.is_object()) {
    request.error = "request: the claim did not return it as a JSON object";
    return request;
  }
  if (const auto error = own.find("error"); error != own.end() && error->is_string()) {
    request.error = error->get<std::string>();
    return request;
  }
  request.method = own.value("method", "POST");
  if (const auto timeout = own.find("timeout_ms");
      timeout != own.end() && timeout->is_number_integer())
    request.timeout_ms = timeout->get<int>();
  if (const auto headers = own.find("headers"); headers != own.end() && headers->is_object()) {
    const std::string host = url_host(request.url).value_or("");
    for (const auto& [name, value] : headers->items()) {
      if (!value.is_string() ||
          !header_line(name, value.get<std::string>(), secrets, host, request)) {
        if (request.error.empty()) request.error = "request.headers." + name + ": must be a string";
        return request;
      }
    }
  }
  if (const auto body = own.find("body"); body != own.end() && body->is_string()) {
    request.body = body->get<std::string>();
    request.content_type = own.value("content_type", "application/json");
  } else if (request.method != "GET" && request.method != "DELETE") {
    // POST, PUT and PATCH without a body of their own send an empty one, with no type.
    request.body = "";
    request.content_type.clear();
  }
  return request;
}

}  // namespace nudge
