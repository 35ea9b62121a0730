// The SSRF guard's classification of addresses: every refused kind in IPv4, IPv6 and
// IPv4-mapped form, public addresses passing, and allow_private opening exactly its networks.

#include "nudge/address_guard.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace nudge {
namespace {

// The guard's answer for an address given as text, through the sockaddr the worker sees.
std::optional<std::string> RefusalOf(const AddressGuard& guard, const std::string& text) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  if (::inet_pton(AF_INET, text.c_str(), &in.sin_addr) == 1)
    return guard.refusal(reinterpret_cast<const sockaddr*>(&in));
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  if (::inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) == 1)
    return guard.refusal(reinterpret_cast<const sockaddr*>(&in6));
  ADD_FAILURE() << "not an address: " << text;
  return std::nullopt;
}

struct RefusedCase {
  std::string address;
  std::string kind;  // as the refusal says it
};

TEST(AddressGuard, RefusesEveryPrivateKindOfAddressNamingIt) {
  const std::vector<RefusedCase> cases = {
      {"127.0.0.1", "a loopback"},
      {"127.255.255.254", "a loopback"},
      {"::1", "a loopback"},
      {"::ffff:127.0.0.1", "a loopback"},
      {"10.0.0.1", "a private"},
      {"10.255.255.255", "a private"},
      {"172.16.0.1", "a private"},
      {"172.31.255.255", "a private"},
      {"192.168.1.1", "a private"},
      {"::ffff:10.1.2.3", "a private"},
      {"fc00::1", "a private"},
      {"fd12:3456::1", "a private"},
      {"169.254.169.254", "a link-local"},
      {"::ffff:169.254.169.254", "a link-local"},
      {"fe80::1", "a link-local"},
      {"febf::1", "a link-local"},
      {"224.0.0.1", "a multicast"},
      {"239.255.255.250", "a multicast"},
      {"ff02::1", "a multicast"},
      {"0.0.0.0", "an unspecified"},
      {"0.1.2.3", "an unspecified"},
      {"::", "an unspecified"},
      {"100.64.0.1", "a CGNAT (shared)"},
      {"100.127.255.255", "a CGNAT (shared)"},
      {"255.255.255.255", "a reserved"},
      {"::ffff:0.0.0.0", "an unspecified"},
      {"fec0::1", "a site-local"},
      {"64:ff9b:1::a00:5", "a local NAT64"},
      {"192.0.0.170", "a special-purpose"},
      {"198.18.0.1", "a benchmarking"},
      {"198.19.255.255", "a benchmarking"},
      {"192.0.2.2", "a documentation"},
      {"198.51.100.7", "a documentation"},
      {"203.0.113.255", "a documentation"},
      {"2001:db8::1", "a documentation"},
      {"100::1", "a discard-only"},
  };
  const AddressGuard guard;
  for (const RefusedCase& c : cases) {
    const auto refusal = RefusalOf(guard, c.address);
    ASSERT_TRUE(refusal.has_value()) << c.address;
    EXPECT_EQ(*refusal, c.address + " is " + c.kind + " address");
  }
}

// IPv4-compatible, NAT64 and 6to4 addresses reach the IPv4 address they carry.
TEST(AddressGuard, IPv6FormsOfARefusedIPv4AddressAreRefused) {
  const AddressGuard guard;
  for (const auto& [address, inner] : std::vector<std::pair<std::string, std::string>>{
           {"::127.0.0.1", "127.0.0.1 is a loopback"},
           {"::7f00:1", "127.0.0.1 is a loopback"},
           {"64:ff9b::a9fe:a9fe", "169.254.169.254 is a link-local"},
           {"64:ff9b::a00:5", "10.0.0.5 is a private"},
           {"2002:7f00:1::", "127.0.0.1 is a loopback"},
           {"2002:c0a8:101::1", "192.168.1.1 is a private"}}) {
    const auto refusal = RefusalOf(guard, address);
    ASSERT_TRUE(refusal.has_value()) << address;
    EXPECT_TRUE(refusal->ends_with(" carries an IPv4 address: " + inner + " address")) << *refusal;
  }
  // Their public addresses pass, and opening the IPv4 network opens its IPv6 forms.
  for (const std::string address : {"64:ff9b::808:808", "2002:808:808::1", "::808:808"})
    EXPECT_EQ(RefusalOf(guard, address), std::nullopt) << address;
  EXPECT_EQ(RefusalOf(AddressGuard({"127.0.0.0/8"}), "::127.0.0.1"), std::nullopt);
}

// A service bound to 0.0.0.0 on the worker's host answers on the host's every address, public
// ones too: each is refused at connect time (as its range's, or as the host's own), unless
// allow_private opens it.
TEST(AddressGuard, TheConnectingHostsOwnAddressesAreRefused) {
  const AddressGuard guard;
  ifaddrs* list = nullptr;
  ASSERT_EQ(::getifaddrs(&list), 0);
  int checked = 0;
  for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr ||
        (a->ifa_addr->sa_family != AF_INET && a->ifa_addr->sa_family != AF_INET6))
      continue;
    const auto refusal = guard.refusal(a->ifa_addr);
    ASSERT_TRUE(refusal.has_value()) << a->ifa_name;
    // As its range's ("127.0.0.1 is a loopback address"), else as this host's.
    EXPECT_TRUE(refusal->ends_with(" address") || refusal->ends_with(" is an address of this host"))
        << *refusal;
    EXPECT_EQ(AddressGuard({"0.0.0.0/0", "::/0"}).refusal(a->ifa_addr), std::nullopt) << *refusal;
    ++checked;
  }
  ::freeifaddrs(list);
  EXPECT_GE(checked, 1) << "every machine has a loopback address";
}

TEST(AddressGuard, LetsPublicAddressesThrough) {
  const AddressGuard guard;
  for (const std::string address :
       {"93.184.215.14", "8.8.8.8", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
        "169.253.255.255", "192.167.255.255", "223.255.255.255",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:8.8.8.8", "192.0.3.1", "198.51.101.1",
        "203.0.112.255", "2001:db9::1"}) {
    EXPECT_EQ(RefusalOf(guard, address), std::nullopt) << address;
  }
}

TEST(AddressGuard, AllowPrivateOpensExactlyItsNetworks) {
  const AddressGuard guard({"127.0.0.0/8", "::1/128", "10.1.0.0/16"});
  for (const std::string address :
       {"127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "::1", "10.1.200.3"}) {
    EXPECT_EQ(RefusalOf(guard, address), std::nullopt) << address;
  }
  for (const std::string address : {"10.2.0.1", "169.254.169.254", "::ffff:10.2.0.1", "fe80::1"}) {
    EXPECT_TRUE(RefusalOf(guard, address).has_value()) << address;
  }
}

TEST(AddressGuard, AWholeFamilyCanBeOpened) {
  const AddressGuard guard({"0.0.0.0/0", "::/0"});
  for (const std::string address : {"127.0.0.1", "::1", "fe80::1", "169.254.169.254"}) {
    EXPECT_EQ(RefusalOf(guard, address), std::nullopt) << address;
  }
}

TEST(AddressGuard, ANonIpFamilyIsRefused) {
  sockaddr unix_address{};
  unix_address.sa_family = AF_UNIX;
  EXPECT_TRUE(AddressGuard().refusal(&unix_address).has_value());
}

TEST(AddressGuard, LiteralHostsAreCheckedAndNamesAreLeftForConnectTime) {
  const AddressGuard guard;
  EXPECT_EQ(guard.literal_refusal("127.0.0.1"), "127.0.0.1 is a loopback address");
  EXPECT_EQ(guard.literal_refusal("[::1]"), "::1 is a loopback address");
  EXPECT_EQ(guard.literal_refusal("[fe80::1%25eth0]"), "fe80::1 is a link-local address");
  EXPECT_EQ(guard.literal_refusal("127.0.0.1."), "127.0.0.1 is a loopback address");
  EXPECT_EQ(guard.literal_refusal("[::ffff:169.254.169.254]"),
            "::ffff:169.254.169.254 is a link-local address");
  EXPECT_EQ(guard.literal_refusal("localhost"), std::nullopt);
  EXPECT_EQ(guard.literal_refusal("hooks.example.com"), std::nullopt);
  EXPECT_EQ(guard.literal_refusal("8.8.8.8"), std::nullopt);
}

TEST(AddressGuard, TheRefusalMessageNamesTheGuardAndTheSetting) {
  EXPECT_EQ(ssrf_refused("127.0.0.1 is a loopback address"),
            "refused: 127.0.0.1 is a loopback address (SSRF guard; [webhook] allow_private)");
}

struct NetworkCase {
  std::string text;
  bool valid;
};

TEST(ParseNetwork, AcceptsOnlyExactNetworksWithAPrefix) {
  const std::vector<NetworkCase> cases = {
      {"127.0.0.0/8", true},   {"::1/128", true},
      {"0.0.0.0/0", true},     {"::/0", true},
      {"10.1.0.0/16", true},   {"fd00::/8", true},
      {"127.0.0.1/32", true},  {"127.0.0.1", false},
      {"127.0.0.1/8", false},  {"127.1/8", false},
      {"localhost/8", false},  {"10.0.0.0/33", false},
      {"::1/129", false},      {"10.0.0.0/", false},
      {"10.0.0.0/-1", false},  {"10.0.0.0/+8", false},
      {"10.0.0.0/8 ", false},  {" 10.0.0.0/8", false},
      {"10.0.0.0/08x", false}, {"", false},
      {"/8", false},
  };
  for (const NetworkCase& c : cases) {
    std::string problem;
    EXPECT_EQ(parse_network(c.text, problem).has_value(), c.valid) << '"' << c.text << '"';
    EXPECT_EQ(problem.empty(), c.valid) << c.text;
  }
}

TEST(AddressGuard, ABadNetworkIsRefusedAtConstruction) {
  EXPECT_THROW(AddressGuard({"127.0.0.1"}), std::invalid_argument);
}

}  // namespace
}  // namespace nudge
