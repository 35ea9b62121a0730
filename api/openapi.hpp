#pragma once
// The OpenAPI 3.0 description of every route (api/openapi.json, compiled in).

#include <string>

namespace nudge::api {

const std::string& openapi_document();

}  // namespace nudge::api
