#pragma once
// The SSRF guard: which IP addresses a webhook may reach. Loopback, private (RFC 1918,
// fc00::/7), link-local, multicast, unspecified, CGNAT, documentation and reserved addresses are
// refused, in IPv4, IPv6 and IPv4-mapped IPv6 form, and at connect time the addresses of the
// connecting machine itself, unless a network of [webhook] allow_private holds them.
// nudge-api checks a literal address when a target is given; nudge-worker checks the address
// of every connection it opens for a webhook.

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nudge {

// A network such as 10.0.0.0/8 or fc00::/7. IPv4 is held as IPv4-mapped IPv6 (::ffff:0:0/96),
// so an IPv4 network also covers the mapped form of its addresses.
struct IpNetwork {
  std::array<std::uint8_t, 16> bytes{};
  int prefix = 0;  // of the 128 bits
};

// Parses "address/prefix" strictly: a dotted-quad IPv4 or an IPv6 address, a decimal prefix
// (0..32 or 0..128), no bits set past it. On failure returns nullopt and says why in `problem`
// (without echoing the text).
std::optional<IpNetwork> parse_network(std::string_view text, std::string& problem);

class AddressGuard {
 public:
  // `allow_private`: networks that are reachable although private; each must parse
  // (parse_network), or this throws std::invalid_argument.
  explicit AddressGuard(const std::vector<std::string>& allow_private = {});

  // Why `address` (AF_INET or AF_INET6) may not be reached, as "127.0.0.1 is a loopback
  // address" or "203.0.114.7 is an address of this host"; nullopt when it may. Another family
  // is refused.
  std::optional<std::string> refusal(const sockaddr* address) const;

  // The same for a URL's host when it is a literal IP address ("127.0.0.1", "127.0.0.1.",
  // "[::1]" or "::1");
  // nullopt for a host name, which is only checked when it is resolved, at connect time.
  std::optional<std::string> literal_refusal(std::string_view host) const;

 private:
  // Whether a network of allow_private holds the address.
  bool allowed(const std::array<std::uint8_t, 16>& mapped) const;
  std::optional<std::string> refusal(const std::array<std::uint8_t, 16>& mapped,
                                     const std::string& shown) const;
  // refusal(), and at connect time also an address of this machine's own interfaces.
  std::optional<std::string> connect_refusal(const std::array<std::uint8_t, 16>& mapped,
                                             const std::string& shown) const;

  std::vector<IpNetwork> allowed_;
};

// What the worker says when the guard refuses a connection, and the API when it refuses a
// target: "refused: <refusal> (SSRF guard; [webhook] allow_private)".
std::string ssrf_refused(const std::string& refusal);

}  // namespace nudge
