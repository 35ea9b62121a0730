#pragma once
// The `request` of a webhook reminder (and of a rule's reminder template): method, headers, body
// and content_type, checked before anything reaches the database, which checks the same again
// and the body's placeholders against the payload (nudge.check_request). The names of secrets
// can only be checked here: the database never learns them.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "nudge/config.hpp"

namespace nudge::api {

// Limits of a request, as nudge.check_request has them.
inline constexpr std::size_t kMaxRequestHeaders = 20;
inline constexpr std::size_t kMaxHeaderNameChars = 100;
inline constexpr std::size_t kMaxHeaderValueChars = 2048;
inline constexpr std::size_t kMaxBodyTemplateBytes = 16384;
inline constexpr std::size_t kMaxContentTypeChars = 200;

// Checks `value` as the request of a reminder on `channel` whose target is `target` (as given);
// 400 naming the field under `prefix` (e.g. "items[3]."), such as request.headers.Host or
// request.method. Every {{secret.NAME}} of a header must be in `secrets`, with hosts that
// include the target's when it is known here (not a rule's template, nor contacts: the worker
// checks those as it sends).
void check_request(const nlohmann::json& value, const std::string& channel,
                   const std::string& prefix, const Secrets& secrets,
                   const std::optional<std::string>& target);

// 400 unknown_secret naming `field` when {{secret.<name>}} is not configured: the API and the
// worker must both have it.
void check_secret_known(const std::string& field, const std::string& name, const Secrets& secrets);

// The {{secret.NAME}} placeholders of a rule's action.reminder.request.headers, if it has any,
// name configured secrets that may go to its target's host when the template's target is one
// (400 naming the header otherwise); nudge.check_rule checks the rest.
void check_rule_secrets(const nlohmann::json& action, const Secrets& secrets);

}  // namespace nudge::api
