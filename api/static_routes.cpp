// The dashboard (/ and /ui/...) and the API docs (/docs and /docs/...): files compiled into the
// binary, served without a token because they hold no data (every number on the page comes from
// an API call that carries one). Each answer has an ETag, so a browser revalidates cheaply
// (304) and never runs a stale script after an upgrade.

#include "assets.hpp"
#include "errors.hpp"
#include "routes.hpp"

namespace nudge::api {
namespace {

// Everything from this origin only; the page loads nothing from outside. Swagger UI sets
// inline styles and draws its icons from data: URLs.
constexpr const char* kDashboardPolicy =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'";
constexpr const char* kDocsPolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// Whether httplib gzips an answer of `content_type` to a request that accepts gzip (its
// can_compress_content_type).
bool compressible(std::string_view content_type) {
  for (const std::string_view type :
       {"image/svg+xml", "application/javascript", "application/json", "application/xml",
        "application/protobuf", "application/xhtml+xml"})
    if (content_type.substr(0, type.size()) == type) return true;
  return content_type.substr(0, 5) == "text/" && content_type.substr(0, 17) != "text/event-stream";
}

// The gzip form of a file is another representation: its own tag ("...-gzip"), so no cache
// hands it, by tag, to a client that did not ask for gzip (RFC 9110 section 8.8.3).
std::string gzip_etag(std::string_view etag) {
  return std::string(etag.substr(0, etag.size() - 1)) + "-gzip\"";
}

// If-None-Match names either form of the file (a list, weak tags or "*" included): both are the
// same content, so the client's copy, whichever it is, is current.
bool names_either_form(std::string_view if_none_match, std::string_view etag) {
  const std::string gzip = gzip_etag(etag);
  std::size_t at = 0;
  while (at <= if_none_match.size()) {
    const std::size_t end = std::min(if_none_match.find(',', at), if_none_match.size());
    std::string_view tag = if_none_match.substr(at, end - at);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == "*" || tag == etag || tag == gzip) return true;
    at = end + 1;
  }
  return false;
}

void serve(const httplib::Request& req, httplib::Response& res, const std::string& name,
           const char* policy) {
  const Asset* asset = find_asset(name);
  if (asset == nullptr) throw ApiError(404, "not_found", "no such file");
  // settle_accept_encoding left "gzip" or nothing.
  const bool gzipped =
      req.get_header_value("Accept-Encoding") == "gzip" && compressible(asset->content_type);
  res.set_header("ETag", gzipped ? gzip_etag(asset->etag) : std::string(asset->etag));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Content-Security-Policy", policy);
  if (names_either_form(req.get_header_value("If-None-Match"), asset->etag)) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(std::string(asset->body), std::string(asset->content_type));
}

}  // namespace

// Unlike the API's routes, the pages ignore a query string: a shared link that gained one
// (?utm_source=...) still opens the page.
void add_static_routes(Router& router) {
  router.add("GET", "/", [](const httplib::Request& req, httplib::Response& res) {
    serve(req, res, "dashboard/index.html", kDashboardPolicy);
  });
  router.add("GET", R"(/ui/([A-Za-z0-9_.-]+))",
             [](const httplib::Request& req, httplib::Response& res) {
               serve(req, res, "dashboard/" + req.matches[1].str(), kDashboardPolicy);
             });
  router.add("GET", "/docs", [](const httplib::Request& req, httplib::Response& res) {
    serve(req, res, "docs/index.html", kDocsPolicy);
  });
  router.add("GET", R"(/docs/([A-Za-z0-9_.-]+))",
             [](const httplib::Request& req, httplib::Response& res) {
               serve(req, res, "docs/" + req.matches[1].str(), kDocsPolicy);
             });
}

}  // namespace nudge::api
