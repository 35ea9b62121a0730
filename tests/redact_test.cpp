// Secrets never reach logs: URLs and error texts are masked before they are printed.

#include <gtest/gtest.h>

#include "nudge/database.hpp"

namespace {

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
        UrlCase{"postgresql://u@db/nudge", "postgresql://u@db/nudge"},
        UrlCase{"postgresql://db:5432/nudge", "postgresql://db:5432/nudge"},
        UrlCase{"postgresql://u:pw@db/x?password=other", "postgresql://u:***@db/x?password=***"},
        UrlCase{"host=db user=u password=s3cret dbname=x", "host=db user=u password=*** dbname=x"},
        UrlCase{"host=db password = 'a b c' dbname=x", "host=db password = *** dbname=x"}));

TEST(Redact, MasksTheWholeUrlAndItsPasswordInAnErrorText) {
  const std::string url = "postgresql://u:s3cret@db/nudge";
  const std::string text = "could not connect to " + url + " (auth failed for s3cret)";
  const std::string out = nudge::redact(text, url);
  EXPECT_EQ(out.find("s3cret"), std::string::npos) << out;
}

TEST(Redact, LeavesTextWithoutTheSecretAlone) {
  EXPECT_EQ(nudge::redact("connection refused", "postgresql://u:pw123@db/x"), "connection refused");
}

}  // namespace
