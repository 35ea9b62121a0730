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

void serve(const httplib::Request& req, httplib::Response& res, const std::string& name,
           const char* policy) {
  const Asset* asset = find_asset(name);
  if (asset == nullptr) throw ApiError(404, "not_found", "no such file");
  res.set_header("ETag", std::string(asset->etag));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Content-Security-Policy", policy);
  if (req.get_header_value("If-None-Match") == asset->etag) {
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
