#pragma once
// The host of a webhook URL as libcurl will connect to it: libcurl reads 127.1, 0x7f000001 and
// 2130706433 as 127.0.0.1, so reading the host any other way would let those past the SSRF
// guard's check of a literal address (AddressGuard::literal_refusal).

#include <optional>
#include <string>

namespace nudge {

// nullopt when libcurl cannot parse `url` or it has no host.
std::optional<std::string> url_host(const std::string& url);

}  // namespace nudge
