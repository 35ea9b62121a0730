#include "nudge/address_guard.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace nudge {
namespace {

using Bytes = std::array<std::uint8_t, 16>;

// A refused network and what its addresses are, in the words of the error.
struct Blocked {
  IpNetwork network;
  std::string_view kind;
};

constexpr Bytes kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};

constexpr IpNetwork v4(std::uint8_t a, std::uint8_t b, int prefix, std::uint8_t c = 0) {
  Bytes bytes = kMappedPrefix;
  bytes[12] = a;
  bytes[13] = b;
  bytes[14] = c;
  return {bytes, 96 + prefix};
}

constexpr IpNetwork v6(std::uint8_t first, std::uint8_t second, std::uint8_t last, int prefix) {
  Bytes bytes{};
  bytes[0] = first;
  bytes[1] = second;
  bytes[15] = last;
  return {bytes, prefix};
}

// Every network the guard refuses. IPv4 is listed once: mapped addresses are held as IPv4.
constexpr Blocked kBlocked[] = {
    {v4(0, 0, 8), "unspecified"},  // 0.0.0.0/8: Linux connects 0.0.0.0 to the host itself
    {v4(127, 0, 8), "loopback"},
    {v4(10, 0, 8), "private"},
    {v4(172, 16, 12), "private"},
    {v4(192, 168, 16), "private"},
    {v4(100, 64, 10), "CGNAT (shared)"},
    {v4(169, 254, 16), "link-local"},
    {v4(224, 0, 4), "multicast"},
    {v4(240, 0, 4), "reserved"},             // with 255.255.255.255, the broadcast address
    {v4(192, 0, 24, 0), "special-purpose"},  // 192.0.0.0/24: IETF protocol assignments
    {v4(198, 18, 15), "benchmarking"},
    // Documentation ranges (RFC 5737, RFC 3849): never on the Internet, so a machine that has
    // one is a test network's, reached by its neighbours only.
    {v4(192, 0, 24, 2), "documentation"},
    {v4(198, 51, 24, 100), "documentation"},
    {v4(203, 0, 24, 113), "documentation"},
    {{{0x20, 0x01, 0x0d, 0xb8}, 32}, "documentation"},
    {{{0x01, 0x00}, 64}, "discard-only"},  // 100::/64 (RFC 6666)
    {v6(0, 0, 0, 128), "unspecified"},
    {v6(0, 0, 1, 128), "loopback"},
    {v6(0xfc, 0, 0, 7), "private"},
    {v6(0xfe, 0x80, 0, 10), "link-local"},
    {v6(0xfe, 0xc0, 0, 10), "site-local"},  // deprecated, still routed inside some sites
    {{{0, 0x64, 0xff, 0x9b, 0, 1}, 48}, "local NAT64"},  // 64:ff9b:1::/48 (RFC 8215)
    {v6(0xff, 0, 0, 8), "multicast"},
};

// IPv6 forms a gateway or the kernel turns into an IPv4 address: IPv4-compatible ::a.b.c.d,
// NAT64's well-known prefix 64:ff9b::a.b.c.d (RFC 6052) and 6to4's 2002:aabb:ccdd:: (RFC 3056).
constexpr IpNetwork kIpv4Compatible = {{}, 96};
constexpr IpNetwork kNat64 = {{0, 0x64, 0xff, 0x9b}, 96};
constexpr IpNetwork kSixToFour = {{0x20, 0x02}, 16};

bool contains(const IpNetwork& network, const Bytes& address);

// The IPv4 address an IPv6 address carries in one of those forms, as an IPv4-mapped address.
std::optional<Bytes> embedded_v4(const Bytes& address) {
  Bytes v4 = kMappedPrefix;
  if (contains(kIpv4Compatible, address) || contains(kNat64, address)) {
    std::memcpy(v4.data() + 12, address.data() + 12, 4);
    return v4;
  }
  if (contains(kSixToFour, address)) {
    std::memcpy(v4.data() + 12, address.data() + 2, 4);
    return v4;
  }
  return std::nullopt;
}

bool contains(const IpNetwork& network, const Bytes& address) {
  const int whole = network.prefix / 8;
  if (std::memcmp(network.bytes.data(), address.data(), static_cast<std::size_t>(whole)) != 0)
    return false;
  const int rest = network.prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (network.bytes[whole] & mask) == (address[whole] & mask);
}

Bytes mapped(const in_addr& address) {
  Bytes bytes = kMappedPrefix;
  std::memcpy(bytes.data() + 12, &address, 4);
  return bytes;
}

Bytes bytes_of(const in6_addr& address) {
  Bytes bytes;
  std::memcpy(bytes.data(), &address, 16);
  return bytes;
}

std::string text_of(int family, const void* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(family, address, text, sizeof text) == nullptr) return "the address";
  return text;
}

// Parses an IPv4 or IPv6 address as inet_pton does (dotted quad only for IPv4).
std::optional<Bytes> parse_address(const std::string& text, bool& is_v4) {
  in_addr address4{};
  if (::inet_pton(AF_INET, text.c_str(), &address4) == 1) {
    is_v4 = true;
    return mapped(address4);
  }
  in6_addr address6{};
  if (::inet_pton(AF_INET6, text.c_str(), &address6) == 1) {
    is_v4 = false;
    return bytes_of(address6);
  }
  return std::nullopt;
}

// Whether `address` is one of this machine's own: a service bound to 0.0.0.0 on the worker's
// host answers on every address the host has, public ones included. Read at each check, so a
// new address counts at once (a connection's check, not a request's: connections are reused).
bool is_own_address(const Bytes& address) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return false;
  bool own = false;
  for (const ifaddrs* a = list; a != nullptr && !own; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    if (a->ifa_addr->sa_family == AF_INET)
      own = mapped(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr) == address;
    else if (a->ifa_addr->sa_family == AF_INET6)
      own = bytes_of(reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr) == address;
  }
  ::freeifaddrs(list);
  return own;
}

}  // namespace

std::optional<IpNetwork> parse_network(std::string_view text, std::string& problem) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    problem = "must be a network with its prefix length, e.g. 127.0.0.0/8 or ::1/128";
    return std::nullopt;
  }
  bool is_v4 = false;
  const auto address = parse_address(std::string(text.substr(0, slash)), is_v4);
  if (!address) {
    problem = "must start with an IPv4 address (a.b.c.d) or an IPv6 address, e.g. 10.0.0.0/8";
    return std::nullopt;
  }
  const std::string_view digits = text.substr(slash + 1);
  const int most = is_v4 ? 32 : 128;
  int prefix = -1;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() ||
      prefix < 0 || prefix > most) {
    problem = "must end in a prefix length from 0 to " + std::to_string(most);
    return std::nullopt;
  }
  IpNetwork network{*address, is_v4 ? 96 + prefix : prefix};
  // A host address with a prefix (127.0.0.1/8) is most likely a typo for something else.
  IpNetwork exact = network;
  for (int bit = network.prefix; bit < 128; ++bit)
    exact.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
  if (exact.bytes != network.bytes) {
    problem = "has bits set past its prefix length (write the network, e.g. 127.0.0.0/8)";
    return std::nullopt;
  }
  return network;
}

AddressGuard::AddressGuard(const std::vector<std::string>& allow_private) {
  for (const std::string& text : allow_private) {
    std::string problem;
    const auto network = parse_network(text, problem);
    if (!network) throw std::invalid_argument("allow_private: " + problem);
    allowed_.push_back(*network);
  }
}

bool AddressGuard::allowed(const Bytes& address) const {
  for (const IpNetwork& network : allowed_) {
    if (contains(network, address)) return true;
  }
  return false;
}

std::optional<std::string> AddressGuard::refusal(const Bytes& address,
                                                 const std::string& shown) const {
  if (allowed(address)) return std::nullopt;
  for (const Blocked& blocked : kBlocked) {
    if (contains(blocked.network, address)) {
      const bool an = blocked.kind.front() == 'u';  // "an unspecified"
      return shown + " is " + (an ? "an " : "a ") + std::string(blocked.kind) + " address";
    }
  }
  if (const auto v4 = embedded_v4(address)) {
    if (auto inner = refusal(*v4, text_of(AF_INET, v4->data() + 12)))
      return shown + " carries an IPv4 address: " + *inner;
  }
  return std::nullopt;
}

std::optional<std::string> AddressGuard::refusal(const sockaddr* address) const {
  if (address != nullptr && address->sa_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in*>(address)->sin_addr;
    return connect_refusal(mapped(in), text_of(AF_INET, &in));
  }
  if (address != nullptr && address->sa_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
    return connect_refusal(bytes_of(in6), text_of(AF_INET6, &in6));
  }
  return std::string("an address that is not IPv4 or IPv6 is not a webhook target");
}

std::optional<std::string> AddressGuard::connect_refusal(const Bytes& address,
                                                         const std::string& shown) const {
  if (auto refused = refusal(address, shown)) return refused;
  if (!allowed(address) && is_own_address(address)) return shown + " is an address of this host";
  return std::nullopt;
}

std::optional<std::string> AddressGuard::literal_refusal(std::string_view host) const {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  // A zone (fe80::1%eth0) is not part of the address; a final dot (127.0.0.1.) resolves as if
  // it were not there.
  host = host.substr(0, host.find('%'));
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  bool is_v4 = false;
  const auto address = parse_address(std::string(host), is_v4);
  if (!address) return std::nullopt;
  return refusal(*address, std::string(host));
}

std::string ssrf_refused(const std::string& refusal) {
  return "refused: " + refusal + " (SSRF guard; [webhook] allow_private)";
}

}  // namespace nudge
