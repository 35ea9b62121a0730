// Secrets never reach logs: URLs and error texts are masked before they are printed.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nudge/database.hpp"
#include "nudge/secrets.hpp"

namespace {

struct MaskCase {
  const char* label;
  std::string text;
  std::vector<std::string> secrets;
  std::string expected;
};

class MaskSecrets : public ::testing::TestWithParam<MaskCase> {};

TEST_P(MaskSecrets, HidesEveryOccurrenceOfEverySecret) {
  EXPECT_EQ(nudge::mask_secrets(GetParam().text, GetParam().secrets), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Rules, MaskSecrets,
    ::testing::Values(
        MaskCase{"TextWithoutSecretsIsUnchanged",
                 "connection refused",
                 {"s3cret"},
                 "connection refused"},
        MaskCase{"NoSecretsAtAll", "connection refused", {}, "connection refused"},
        MaskCase{"EveryOccurrence", "s3cret, then s3cret", {"s3cret"}, "***, then ***"},
        MaskCase{"AdjacentOccurrencesEachMasked", "s3crets3cret", {"s3cret"}, "******"},
        MaskCase{"EverySecret", "user bob4 key k3y9", {"bob4", "k3y9"}, "user *** key ***"},
        // The URL goes as one "***": masking its password first would leave the rest showing.
        MaskCase{"LongestFirst",
                 "to postgresql://u:s3cret@db/x: auth failed for s3cret",
                 {"s3cret", "postgresql://u:s3cret@db/x"},
                 "to ***: auth failed for ***"},
        MaskCase{"OverlappingSecretsHiddenWhole", "[abcdefghi]", {"abcdef", "defghi"}, "[***]"},
        MaskCase{"SelfOverlappingOccurrences", "xaaaax", {"aaa"}, "x***x"},
        MaskCase{"ShortAndEmptySecretsAreIgnored", "ab to cd", {"ab", "", "cd"}, "ab to cd"},
        MaskCase{"ThreeBytesAreEnough", "pw1 or pw2", {"pw1"}, "*** or pw2"}),
    [](const auto& info) { return std::string(info.param.label); });

struct UrlCase {
  const char* url;
  const char* expected;
};

class RedactUrl : public ::testing::TestWithParam<UrlCase> {};

TEST_P(RedactUrl, MasksOnlyThePassword) {
  EXPECT_EQ(nudge::redact_url(GetParam().url), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    AllForms, RedactUrl,
    ::testing::Values(
        UrlCase{"postgresql://u:s3cret@db:5432/nudge", "postgresql://u:***@db:5432/nudge"},
        UrlCase{"postgres://u:p%40ss@db/nudge?sslmode=require",
                "postgres://u:***@db/nudge?sslmode=require"},
        UrlCase{"postgresql://u:Top@Secret9@db:5432/x", "postgresql://u:***@db:5432/x"},
        UrlCase{"postgresql://u:pw@db/x?sslmode=a@b", "postgresql://u:***@db/x?sslmode=a@b"},
        // libpq reads a ? or # before the @ as part of the password.
        UrlCase{"postgresql://u:Hash#Frag@db:1/x", "postgresql://u:***@db:1/x"},
        UrlCase{"postgresql://u:Q?Mark@db:1/x", "postgresql://u:***@db:1/x"},
        UrlCase{"postgresql://u:pw@db?sslmode=a@b", "postgresql://u:***@db?sslmode=a@b"},
        UrlCase{"postgresql://db:5432/x?application_name=a@b",
                "postgresql://db:5432/x?application_name=a@b"},
        UrlCase{"postgresql://u@db/nudge", "postgresql://u@db/nudge"},
        UrlCase{"postgresql://db:5432/nudge", "postgresql://db:5432/nudge"},
        UrlCase{"postgresql://u:pw@db/x?password=other", "postgresql://u:***@db/x?password=***"},
        UrlCase{"host=db user=u password=s3cret dbname=x", "host=db user=u password=*** dbname=x"},
        UrlCase{"host=db password = 'a b c' dbname=x", "host=db password = *** dbname=x"},
        UrlCase{"host=db password='Kv \\' W0rd' dbname=x", "host=db password=*** dbname=x"}));

TEST(Redact, MasksTheWholeUrlAndItsPasswordInAnErrorText) {
  const std::string url = "postgresql://u:s3cret@db/nudge";
  const std::string text = "could not connect to " + url + " (auth failed for s3cret)";
  const std::string out = nudge::redact(text, url);
  EXPECT_EQ(out.find("s3cret"), std::string::npos) << out;
}

TEST(Redact, MasksEveryPasswordTheUrlHolds) {
  const std::string url = "postgresql://u:first1@db/x?password=second2";
  EXPECT_EQ(nudge::redact("auth failed: first1 / second2 at " + url, url),
            "auth failed: *** / *** at ***");
}

TEST(Redact, MasksAKeywordPasswordAndLeavesAShortOneAlone) {
  EXPECT_EQ(nudge::redact("no s3cret here", "host=db password=s3cret"), "no *** here");
  EXPECT_EQ(nudge::redact("pw is wrong for postgresql://u:pw@db/x", "postgresql://u:pw@db/x"),
            "pw is wrong for ***");
}

TEST(DatabaseError, SaysAConnectionWasClosedWhereLibpqxxSaysItCannotObtainTheEncoding) {
  const std::string url = "postgresql://u:pw123@db/x";
  EXPECT_EQ(nudge::database_error(
                pqxx::broken_connection("Could not obtain client encoding: not connected."), url),
            "the connection to the database is closed (PostgreSQL restarted or stopped, or the "
            "network dropped)");
  EXPECT_EQ(nudge::database_error(pqxx::broken_connection("auth failed at " + url), url),
            "auth failed at ***");
  EXPECT_EQ(nudge::database_error(std::runtime_error("not connected to pw123"), url),
            "not connected to ***");
}

TEST(EchoableForms, ABase64CredentialAddsItsTextAndItsPassword) {
  EXPECT_EQ(
      nudge::echoable_forms("QUMxMjM6YXV0aC10b2tlbg=="),
      (std::vector<std::string>{"QUMxMjM6YXV0aC10b2tlbg==", "AC123:auth-token", "auth-token"}));
  EXPECT_EQ(nudge::echoable_forms("dG9rZW4"), (std::vector<std::string>{"dG9rZW4", "token"}));
  // Not base64, or base64 of bytes that are not text: the secret alone.
  EXPECT_EQ(nudge::echoable_forms("tok_live_0123"), (std::vector<std::string>{"tok_live_0123"}));
  EXPECT_EQ(nudge::echoable_forms("AAECAwQF"), (std::vector<std::string>{"AAECAwQF"}));
}

TEST(Redact, LeavesTextWithoutTheSecretAlone) {
  EXPECT_EQ(nudge::redact("connection refused", "postgresql://u:pw123@db/x"), "connection refused");
}

}  // namespace
