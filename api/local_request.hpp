#pragma once
// With [api] auth = "off" the API is open to anything on this machine, browsers included: a web
// page could POST to it (a text/plain form post needs no preflight) or rebind its own name to
// 127.0.0.1 and read it. So a request for data must name this machine in Host and, when a browser
// says where it comes from, come from this very origin. The open routes (probes, documents) are
// the same for anyone.

#include <httplib.h>

namespace nudge::api {

// Throws ApiError 403 (field Host or Origin) for a request whose Host is not a loopback name or
// address, or whose Origin is not http(s):// + its Host.
void check_local_request(const httplib::Request& req);

}  // namespace nudge::api
