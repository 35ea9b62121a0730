// The API token format: what new_token() makes, what well_formed_token() accepts, and how a
// token is hashed for storage. No database needed.

#include "token.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace nudge::api {
namespace {

TEST(TokenFormat, CrcIsTheStandardCrc32) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);  // the check value of CRC-32/ISO-HDLC
  EXPECT_EQ(crc32(""), 0u);
}

TEST(TokenFormat, NewTokensAreWellFormedAndNeverRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string token = new_token();
    ASSERT_EQ(token.size(), kTokenChars) << token;
    ASSERT_EQ(token.substr(0, 6), "nudge_");
    ASSERT_TRUE(well_formed_token(token)) << token;
    ASSERT_TRUE(seen.insert(token).second) << token;
  }
}

TEST(TokenFormat, EveryCharacterOfTheRandomPartIsUsedAndNothingElse) {
  std::set<char> used;
  for (int i = 0; i < 2000; ++i) {
    const std::string token = new_token();
    used.insert(token.begin() + 6, token.begin() + 6 + kTokenRandomChars);
  }
  EXPECT_EQ(used.size(), 62u);
  for (const char c : used) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << c;
}

TEST(TokenFormat, AnyChangedCharacterBreaksTheChecksum) {
  const std::string token = new_token();
  for (std::size_t i = 6; i < token.size(); ++i) {
    std::string changed = token;
    changed[i] = changed[i] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(well_formed_token(changed)) << "position " << i;
  }
}

TEST(TokenFormat, OtherShapesAreRefused) {
  const std::string token = new_token();
  for (const std::string& bad :
       {std::string(), std::string("nudge_"), token.substr(0, token.size() - 1), token + "0",
        "ghp_" + token.substr(6), "Nudge_" + token.substr(6),
        token.substr(0, 10) + "-" + token.substr(11),
        token.substr(0, 10) + " " + token.substr(11)}) {
    EXPECT_FALSE(well_formed_token(bad)) << bad;
  }
}

TEST(TokenFormat, HashIsTheHexSha256OfTheWholeToken) {
  EXPECT_EQ(token_hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string token = new_token();
  EXPECT_EQ(token_hash_hex(token).size(), 64u);
  EXPECT_EQ(token_hash_hex(token).find(token.substr(6, 8)), std::string::npos);
}

TEST(TokenNames, WordsOfOneToAHundredCharactersAreNames) {
  // Strings, not pointers: a temporary's c_str() would dangle past the list's creation.
  const std::vector<std::string> names = {"ci", "a", "deploy-bot_2.prod", std::string(100, 'x')};
  for (const std::string& name : names) EXPECT_TRUE(valid_token_name(name)) << name;
  const std::vector<std::string> not_names = {
      "", "-ci", ".ci", "_ci", "c i", "ci/1", "ci\n", "çi", std::string(101, 'x')};
  for (const std::string& name : not_names) EXPECT_FALSE(valid_token_name(name)) << name;
}

}  // namespace
}  // namespace nudge::api
