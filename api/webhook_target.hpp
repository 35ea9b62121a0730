#pragma once
// The SSRF guard where a webhook target is given (a reminder, a rule's reminder template, a
// contact): a URL whose host is a literal IP address the guard refuses is a 400 naming the field.
// A host name is not resolved here; the worker checks the address of every connection it opens.
// A URL kept in a secret ({{secret.NAME}} alone) is checked for its name and for holding an
// http(s) URL in nudge-api's [secrets], not a header's token: the operator who set it chose where
// it goes.

#include <nlohmann/json.hpp>
#include <string>

#include "nudge/address_guard.hpp"
#include "nudge/config.hpp"

namespace nudge::api {

// `url` as libcurl (the worker) reads it; a URL it cannot read, or whose host is a name or a
// placeholder, passes (the database names a URL that is not one). {{secret.NAME}} must name a
// configured secret (400 unknown_secret) that holds an http(s) URL (400 invalid_value).
void check_webhook_target(const std::string& field, const std::string& url, const Secrets& secrets,
                          const AddressGuard& guard);

// ",a,b," (or "," for none): the secrets that may stand for a webhook target, those holding an
// http(s) URL, as the database checks a target a rule renders from an event's data
// (nudge.unknown_secret_problem).
std::string webhook_secret_names(const Secrets& secrets);

// The target of a rule's webhook reminder template, when it is given (action.reminder.target).
void check_rule_target(const nlohmann::json& action, const Secrets& secrets,
                       const AddressGuard& guard);

}  // namespace nudge::api
