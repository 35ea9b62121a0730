// {{secret.NAME}} in webhook header values: which values are header templates, and their parts;
// and as a whole webhook address.
// The database reads them the same way (nudge.check_request_text); tests/sql checks that side.

#include "nudge/secret_placeholders.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nudge {
namespace {

struct TemplateCase {
  const char* label;
  std::string value;
  std::vector<std::string> texts;  // empty with `problem`: not a template
  std::vector<std::string> secrets;
  std::string problem;  // a part of the problem expected
};

// {{secret.aaa...}} with a name one byte too long (appended: GCC 12 misreads "..." + string).
std::string too_long_name() {
  std::string text = "{{secret.";
  text.append(kMaxSecretNameBytes + 1, 'a');
  return text.append("}}");
}

class HeaderTemplates : public ::testing::TestWithParam<TemplateCase> {};

TEST_P(HeaderTemplates, SplitAtSecretsOrSayWhyNot) {
  const TemplateCase& c = GetParam();
  std::string problem;
  const auto parts = parse_header_template(c.value, problem);
  if (!c.problem.empty()) {
    EXPECT_FALSE(parts) << c.value;
    EXPECT_NE(problem.find(c.problem), std::string::npos) << problem;
    return;
  }
  ASSERT_TRUE(parts) << problem;
  EXPECT_EQ(parts->texts, c.texts);
  EXPECT_EQ(parts->secrets, c.secrets);
}

INSTANTIATE_TEST_SUITE_P(
    Values, HeaderTemplates,
    ::testing::Values(
        TemplateCase{"PlainText", "text/plain", {"text/plain"}, {}, ""},
        TemplateCase{"Empty", "", {""}, {}, ""},
        TemplateCase{"Bearer", "Bearer {{secret.slack}}", {"Bearer ", ""}, {"slack"}, ""},
        TemplateCase{"SpacesInside", "{{ secret.a_1 }}", {"", ""}, {"a_1"}, ""},
        TemplateCase{"Two", "{{secret.user}}:{{secret.pw}}!", {"", ":", "!"}, {"user", "pw"}, ""},
        TemplateCase{"SingleBracesAreText", "{a} }b{", {"{a} }b{"}, {}, ""},
        TemplateCase{"OtherPlaceholder", "{{payload.x}}", {}, {}, "cannot be used in a header"},
        TemplateCase{"UpperCaseName", "{{secret.Slack}}", {}, {}, "cannot be used in a header"},
        TemplateCase{"NoName", "{{secret.}}", {}, {}, "cannot be used in a header"},
        TemplateCase{"NameTooLong", too_long_name(), {}, {}, "cannot be used in a header"},
        TemplateCase{"Unclosed", "Bearer {{secret.slack", {}, {}, "does not close"},
        TemplateCase{"StrayClose", "a }} b", {}, {}, "does not close"},
        TemplateCase{"BraceInside", "{{secret.{a}}", {}, {}, "does not close"},
        TemplateCase{"ThreeBraces", "{{{secret.a}}}", {}, {}, "three braces"},
        TemplateCase{"OpenInside", "{{ a {{secret.b}}", {}, {}, "does not close"}),
    [](const auto& info) { return info.param.label; });

TEST(SecretNames, AreLowerCaseLettersDigitsAndUnderscoresUpTo64) {
  EXPECT_TRUE(is_secret_name("slack"));
  EXPECT_TRUE(is_secret_name("twilio_auth_2"));
  EXPECT_TRUE(is_secret_name(std::string(64, 'a')));
  EXPECT_FALSE(is_secret_name(""));
  EXPECT_FALSE(is_secret_name(std::string(65, 'a')));
  EXPECT_FALSE(is_secret_name("Slack"));
  EXPECT_FALSE(is_secret_name("slack-bot"));
  EXPECT_FALSE(is_secret_name("a.b"));
}

TEST(SecretAddresses, AreOneSecretPlaceholderAloneAsWritten) {
  EXPECT_EQ(secret_address_name("{{secret.slack}}"), "slack");
  EXPECT_EQ(secret_address_name("{{secret.ops_alerts_2}}"), "ops_alerts_2");
  // Anything else is an address to read as it is (the database says what is wrong with it).
  for (const std::string& other :
       std::vector<std::string>{"{{ secret.slack }}", "{{secret.Slack}}", "{{secret.}}",
                                "{{slack}}", "https://hooks.example.com/{{secret.slack}}",
                                "{{secret.slack}}/more", "{{secret.a}}{{", too_long_name(), ""})
    EXPECT_EQ(secret_address_name(other), std::nullopt) << other;
}

}  // namespace
}  // namespace nudge
