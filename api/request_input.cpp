#include "request_input.hpp"

#include <set>

#include "errors.hpp"
#include "nudge/secret_hosts.hpp"
#include "nudge/secret_placeholders.hpp"
#include "nudge/url_host.hpp"
#include "nudge/utf8.hpp"
#include "text_input.hpp"

namespace nudge::api {
namespace {

using nlohmann::json;

std::string upper(std::string text) {
  for (char& c : text)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return text;
}

// An RFC 7230 token: what a header name may be.
bool is_token(const std::string& name) {
  static const std::string kSymbols = "!#$%&'*+-.^_`|~";
  if (name.empty() || name.size() > kMaxHeaderNameChars) return false;
  for (const char c : name) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && kSymbols.find(c) == std::string::npos) return false;
  }
  return true;
}

// A control character other than tab: never in a header line.
bool has_control(const std::string& text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && byte != '\t') || byte == 0x7F) return true;
  }
  return false;
}

// The host a reminder's target sends to, when it is known before a send: a URL, or the URL a
// secret keeps; not a rule's template, nor contacts.
std::optional<std::string> known_host(const std::optional<std::string>& target,
                                      const Secrets& secrets) {
  if (!target) return std::nullopt;
  if (const auto name = secret_address_name(*target)) {
    const auto it = secrets.find(*name);
    return it == secrets.end() ? std::nullopt : url_host(it->second.value);
  }
  if (target->find("{{") != std::string::npos) return std::nullopt;
  return url_host(*target);
}

// Every {{secret.NAME}} of a header value must be configured, for the API and the worker alike,
// with hosts a header may send it to, the target's among them when it is known.
void check_header_secrets(const std::string& field, const HeaderTemplate& parts,
                          const Secrets& secrets, const std::optional<std::string>& host) {
  for (const std::string& name : parts.secrets) {
    check_secret_known(field, name, secrets);
    const Secret& secret = secrets.at(name);
    if (secret.hosts.empty()) {
      throw bad_field(field, "invalid_value",
                      "{{secret." + name +
                          "}} has no [secret_hosts]: a header sends a secret only to the hosts "
                          "listed for it (set [secret_hosts] " +
                          name + " = [\"api.example.com\"] or NUDGE_SECRET_HOSTS_" + upper(name) +
                          " for nudge-api and nudge-worker)");
    }
    if (host && !secret_may_go_to(secret, *host))
      throw bad_field(field, "invalid_value", secret_host_refusal(name, *host));
  }
}

// One header: a token Nudge does not set itself, once, with one line of text whose only
// placeholders are configured secrets.
void check_header(const std::string& name, const json& value, const std::string& prefix,
                  std::set<std::string>& seen, const Secrets& secrets,
                  const std::optional<std::string>& host) {
  if (!is_token(name)) {
    // Not named in the field: a name may hold a line break. Quoted as JSON instead.
    throw bad_field(prefix + "headers", "invalid_value",
                    json(name.substr(0, kMaxHeaderNameChars)).dump() +
                        " is not a header name: 1 to 100 letters, digits and !#$%&'*+-.^_`|~ "
                        "(an RFC 7230 token)");
  }
  const std::string field = prefix + "headers." + name;
  const std::string key = ascii_lower(name);
  if (key == "host" || key == "content-length" || key == "transfer-encoding" ||
      key == "connection" || key == "idempotency-key" || key.rfind("nudge-", 0) == 0) {
    throw bad_field(field, "invalid_value", "is set by Nudge and cannot be given");
  }
  if (key == "content-type") {
    throw bad_field(field, "invalid_value", "is set from request.content_type");
  }
  if (!seen.insert(key).second) {
    throw bad_field(field, "invalid_value", "is given twice (header names ignore case)");
  }
  if (!value.is_string()) throw bad_field(field, "invalid_type", "must be a string");
  const auto& text = value.get_ref<const std::string&>();
  if (utf8::code_points(text) > kMaxHeaderValueChars) {
    throw bad_field(field, "too_long", "must be at most 2048 characters");
  }
  if (has_control(text)) {
    throw bad_field(field, "invalid_value",
                    "must not hold line breaks or other control characters");
  }
  std::string problem;
  const auto parts = parse_header_template(text, problem);
  if (!parts) throw bad_field(field, "invalid_value", problem);
  check_header_secrets(field, *parts, secrets, host);
}

}  // namespace

void check_secret_known(const std::string& field, const std::string& name, const Secrets& secrets) {
  if (!secrets.contains(name)) {
    throw bad_field(field, "unknown_secret",
                    "{{secret." + name + "}} is not configured (set [secrets] " + name +
                        " or NUDGE_SECRETS_" + upper(name) + " for nudge-api and nudge-worker)");
  }
}

void check_request(const json& value, const std::string& channel, const std::string& prefix,
                   const Secrets& secrets, const std::optional<std::string>& target) {
  const std::string at = prefix + "request.";
  if (!value.is_object()) {
    throw bad_field(prefix + "request", "invalid_type",
                    "must be a JSON object: {\"method\", \"headers\", \"body\", \"content_type\"}");
  }
  if (channel != "webhook") {
    throw bad_field(prefix + "request", "invalid_value", "is only for webhook reminders");
  }
  for (const auto& [key, v] : value.items()) {
    if (key != "method" && key != "headers" && key != "body" && key != "content_type" &&
        key != "timeout_ms")
      throw bad_field(at + key, "unknown_field", "is not a known field");
  }
  if (const auto it = value.find("timeout_ms"); it != value.end()) {
    if (!it->is_number_integer() || it->get<long long>() < 1 || it->get<long long>() > 600000) {
      throw bad_field(at + "timeout_ms", "invalid_value",
                      "must be a whole number of milliseconds from 1 to 600000");
    }
  }
  std::string method = "POST";
  if (const auto it = value.find("method"); it != value.end()) {
    static const std::set<std::string> kMethods = {"POST", "PUT", "PATCH", "GET", "DELETE"};
    if (!it->is_string() || !kMethods.contains(it->get<std::string>())) {
      throw bad_field(at + "method", "invalid_value",
                      "must be one of POST, PUT, PATCH, GET, DELETE");
    }
    method = it->get<std::string>();
  }
  if (const auto it = value.find("headers"); it != value.end()) {
    if (!it->is_object()) {
      throw bad_field(at + "headers", "invalid_type",
                      "must be a JSON object of header names and values");
    }
    if (it->size() > kMaxRequestHeaders) {
      throw bad_field(at + "headers", "invalid_value", "must hold at most 20 headers");
    }
    std::set<std::string> seen;
    const auto host = known_host(target, secrets);
    for (const auto& [name, header] : it->items())
      check_header(name, header, at, seen, secrets, host);
  }
  const auto type = value.find("content_type");
  if (type != value.end()) {
    if (!type->is_string() || type->get_ref<const std::string&>().empty() ||
        utf8::code_points(type->get_ref<const std::string&>()) > kMaxContentTypeChars ||
        has_control(type->get_ref<const std::string&>()) ||
        type->get_ref<const std::string&>().find('/') == std::string::npos) {
      throw bad_field(at + "content_type", "invalid_value",
                      "must be a media type of at most 200 characters, e.g. text/plain; "
                      "charset=utf-8");
    }
  }
  const auto body = value.find("body");
  if (body == value.end()) {
    if (type != value.end())
      throw bad_field(at + "content_type", "invalid_value", "is only for a request with a body");
    return;
  }
  if (method == "GET" || method == "DELETE") {
    throw bad_field(at + "body", "invalid_value",
                    "is not for " + method + ": GET and DELETE send no body");
  }
  if (body->is_null()) {
    throw bad_field(at + "body", "invalid_type",
                    "must be a JSON template or a string with content_type");
  }
  const std::size_t bytes =
      body->is_string() ? body->get_ref<const std::string&>().size() : body->dump().size();
  if (bytes > kMaxBodyTemplateBytes)
    throw bad_field(at + "body", "too_long", "must be at most 16 KiB");
  if (body->is_string() && type == value.end()) {
    throw bad_field(at + "content_type", "missing_field",
                    "is required with a string body (e.g. text/plain, "
                    "application/x-www-form-urlencoded)");
  }
}

void check_rule_secrets(const json& action, const Secrets& secrets) {
  std::optional<std::string> host;
  if (action.is_object() && action.contains("reminder") && action["reminder"].is_object()) {
    const json& reminder = action["reminder"];
    if (const auto target = reminder.find("target");
        target != reminder.end() && target->is_string())
      host = known_host(target->get<std::string>(), secrets);
  }
  const json* headers = &action;
  for (const char* key : {"reminder", "request", "headers"}) {
    if (!headers->is_object() || !headers->contains(key)) return;
    headers = &(*headers)[key];
  }
  if (!headers->is_object()) return;
  for (const auto& [name, value] : headers->items()) {
    if (!value.is_string()) continue;
    std::string problem;
    const auto parts = parse_header_template(value.get_ref<const std::string&>(), problem);
    if (parts)
      check_header_secrets("action.reminder.request.headers." + name, *parts, secrets, host);
    // Otherwise nudge.check_rule names what is wrong with it.
  }
}

}  // namespace nudge::api
