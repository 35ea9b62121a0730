#pragma once
// The files of the dashboard and of the API docs, compiled into the binary
// (cmake/embed_assets.cmake), so the page served is exactly the one built and nothing is read
// from disk or fetched at run time.

#include <string_view>
#include <vector>

namespace nudge::api {

struct Asset {
  std::string_view name;          // "dashboard/app.js", "docs/swagger-ui.css"
  std::string_view content_type;  // with charset for text
  std::string_view etag;          // quoted, from the file's SHA-256
  std::string_view body;
};

const std::vector<Asset>& embedded_assets();

// The asset called `name`, or nullptr.
const Asset* find_asset(std::string_view name);

}  // namespace nudge::api
