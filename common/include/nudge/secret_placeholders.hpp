#pragma once
// {{secret.NAME}} in the header values of a webhook request, or as a whole webhook address: the
// one placeholder the worker fills itself, from [secrets] (or NUDGE_SECRETS_<NAME>), so that a
// secret's value never reaches the database. The API checks the names it is given, the worker
// fills them in, both with this.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nudge {

inline constexpr std::size_t kMaxSecretNameBytes = 64;

// 1 to 64 lower-case ASCII letters, digits and '_' (so [secrets] keys and NUDGE_SECRETS_<NAME>
// name the same secret).
bool is_secret_name(std::string_view name);

// A header value split at its {{secret.NAME}} placeholders: texts[0], secrets[0], texts[1], ...
struct HeaderTemplate {
  std::vector<std::string> texts;    // always one more than secrets
  std::vector<std::string> secrets;  // the names, in order
};

// The parts of `value`, or nullopt with `problem` saying why it is not a header template: a
// placeholder other than {{secret.NAME}}, or a brace pair that is not a placeholder. Spaces
// inside the braces are allowed, as everywhere in Nudge's templates.
std::optional<HeaderTemplate> parse_header_template(std::string_view value, std::string& problem);

// The NAME of a webhook address (a target or a contact's) written as {{secret.NAME}} alone, with
// no spaces: the whole URL is the secret, so the operator who set it chose where it goes.
// nullopt for any other text.
std::optional<std::string> secret_address_name(std::string_view address);

}  // namespace nudge
