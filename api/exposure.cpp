#include "exposure.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace nudge::api {

bool loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

std::optional<std::string> exposure_problem(const ApiConfig& api) {
  if (api.auth != "off" || loopback_host(api.host)) return std::nullopt;
  return "api.auth: \"off\" on " + api.host +
         " would let anyone who can reach that address use the API without a token; refusing "
         "to start. Set [api] auth = \"token\" (NUDGE_API_AUTH=token) and create tokens with "
         "`nudge-api token create --name NAME --scopes read,write`, or listen on 127.0.0.1";
}

}  // namespace nudge::api
