#pragma once
// What one webhook attempt sends: Nudge's own POST of the fire as JSON, or the reminder's own
// request as the claim rendered it (nudge.rendered_request), with the {{secret.NAME}}
// placeholders of its headers, and an address that is one, filled from [secrets]. Builds the
// request; sends nothing.

#include <optional>
#include <string>
#include <vector>

#include "fire.hpp"
#include "nudge/config.hpp"

namespace nudge {

struct WebhookRequest {
  std::string url;  // where it goes: the fire's address, or the URL the secret it names keeps
  std::string method = "POST";
  std::optional<std::string> body;  // the exact bytes to send; nullopt for none (GET, DELETE)
  std::string content_type = "application/json";  // empty: no Content-Type (an empty body)
  std::optional<int> timeout_ms;     // the reminder's own wait for the answer, over [webhook]'s
  std::vector<std::string> headers;  // the reminder's own header lines, secrets filled in
  std::vector<std::string> secrets;  // the values filled in (and what echoes them, echoable_forms),
                                     // to keep out of errors and responses
  std::string error;                 // why nothing can be sent; empty when it can
};

// The request of `fire`, whose idempotency key is `key`. An error (a secret this worker does not
// have, a request the database could not render) names the field and never holds a secret.
WebhookRequest webhook_request(const Fire& fire, const std::string& key, const Secrets& secrets);

}  // namespace nudge
