#pragma once
// The HTTP methods a route can be registered for: the router answers 405 to those a known path
// lacks, and the request metrics label any other method "other".

#include <algorithm>
#include <array>
#include <string>

namespace nudge::api {

inline const std::array<std::string, 5> kRouteMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};

// One of kRouteMethods, or HEAD (served as GET).
inline bool is_route_method(const std::string& method) {
  return method == "HEAD" ||
         std::find(kRouteMethods.begin(), kRouteMethods.end(), method) != kRouteMethods.end();
}

}  // namespace nudge::api
