#include "local_request.hpp"

#include <string>

#include "errors.hpp"
#include "exposure.hpp"
#include "text_input.hpp"

namespace nudge::api {
namespace {

// "localhost:8080" -> "localhost", "[::1]:8080" -> "::1".
std::string host_name(const std::string& authority) {
  if (authority.starts_with('[')) return authority.substr(1, authority.find(']') - 1);
  return authority.substr(0, authority.find(':'));
}

bool loopback_name(const std::string& host) {
  return loopback_host(host) || host.ends_with(".localhost");  // browsers keep *.localhost local
}

}  // namespace

void check_local_request(const httplib::Request& req) {
  // Exactly one Host: a request without one, or with a second naming another machine, named
  // nothing this check could trust (RFC 9112 section 3.2 refuses both).
  if (req.get_header_value_count("Host") != 1)
    throw ApiError(403, "forbidden",
                   "Host: with [api] auth = \"off\" a request must name this machine in exactly "
                   "one Host header (localhost, 127.0.0.1, [::1])",
                   "Host");
  const std::string host = ascii_lower(req.get_header_value("Host"));
  if (!loopback_name(host_name(host)))
    throw ApiError(403, "forbidden",
                   "Host: with [api] auth = \"off\" only a loopback name or address (localhost, "
                   "127.0.0.1, [::1]) is answered, so that no web page can rebind its own name to "
                   "this address and read it; turn tokens on to serve other names",
                   "Host");
  if (!req.has_header("Origin")) return;  // not sent by a browser, or a same-origin GET
  const std::string origin = ascii_lower(req.get_header_value("Origin"));
  if (origin == "http://" + host || origin == "https://" + host) return;
  throw ApiError(403, "forbidden",
                 "Origin: with [api] auth = \"off\" a browser request is answered only from this "
                 "server's own pages, so that no other web page can change Nudge through the "
                 "browser; pages of other origins cannot call it (it sends no CORS headers, "
                 "with tokens on either): call it from your own server",
                 "Origin");
}

}  // namespace nudge::api
