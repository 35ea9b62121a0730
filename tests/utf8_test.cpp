// The one UTF-8 helper: counting characters, checking sequences byte by byte (what makes text
// storable), and cutting without splitting a character.

#include "nudge/utf8.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "nudge/pg_text.hpp"

namespace nudge {
namespace {

using namespace std::string_view_literals;

TEST(Utf8CodePoints, CountsCharactersNotBytes) {
  EXPECT_EQ(utf8::code_points(""), 0u);
  EXPECT_EQ(utf8::code_points("abc"), 3u);
  EXPECT_EQ(utf8::code_points("é"), 1u);
  EXPECT_EQ(utf8::code_points("日本"), 2u);
  EXPECT_EQ(utf8::code_points("𝄞"), 1u);
  EXPECT_EQ(utf8::code_points("a€𝄞é"), 4u);
}

TEST(Utf8CodePoints, CountsEveryByteThatIsNotAContinuationInInvalidText) {
  EXPECT_EQ(utf8::code_points("\x80\x80"), 0u);  // stray continuation bytes
  EXPECT_EQ(utf8::code_points("\xC3"), 1u);      // a lead byte cut short
  EXPECT_EQ(utf8::code_points("\xFF!"), 2u);
}

struct SequenceCase {
  const char* label;
  std::string_view text;
  std::size_t at;
  std::size_t length;  // 0: not a valid sequence
};

class Utf8SequenceLength : public ::testing::TestWithParam<SequenceCase> {};

TEST_P(Utf8SequenceLength, IsTheValidSequenceAtTheOffsetOrZero) {
  EXPECT_EQ(utf8::sequence_length(GetParam().text, GetParam().at), GetParam().length);
}

INSTANTIATE_TEST_SUITE_P(
    AllForms, Utf8SequenceLength,
    ::testing::Values(SequenceCase{"Ascii", "a", 0, 1}, SequenceCase{"Nul", "\0"sv, 0, 1},
                      SequenceCase{"TwoBytes", "é", 0, 2}, SequenceCase{"ThreeBytes", "€", 0, 3},
                      SequenceCase{"FourBytes", "𝄞", 0, 4}, SequenceCase{"AtAnOffset", "a€b", 1, 3},
                      SequenceCase{"LastCodePoint", "\xF4\x8F\xBF\xBF", 0, 4},
                      SequenceCase{"ReplacementCharacter", "\xEF\xBF\xBD", 0, 3},
                      SequenceCase{"StrayContinuation", "\x80", 0, 0},
                      SequenceCase{"InsideACharacter", "€", 1, 0},
                      SequenceCase{"ImpossibleLeadF8", "\xF8\x88\x80\x80\x80", 0, 0},
                      SequenceCase{"ImpossibleLeadFF", "\xFF", 0, 0},
                      SequenceCase{"CutShortByTheEnd", "\xE2\x82", 0, 0},
                      SequenceCase{"CutShortByAnAsciiByte", "\xC3(", 0, 0},
                      SequenceCase{"OverlongTwoBytes", "\xC0\xAF", 0, 0},
                      SequenceCase{"OverlongNul", "\xC0\x80", 0, 0},
                      SequenceCase{"OverlongThreeBytes", "\xE0\x80\xAF", 0, 0},
                      SequenceCase{"OverlongFourBytes", "\xF0\x80\x80\xAF", 0, 0},
                      SequenceCase{"FirstSurrogate", "\xED\xA0\x80", 0, 0},
                      SequenceCase{"LastSurrogate", "\xED\xBF\xBF", 0, 0},
                      SequenceCase{"JustBelowTheSurrogates", "\xED\x9F\xBF", 0, 3},
                      SequenceCase{"PastTheLastCodePoint", "\xF4\x90\x80\x80", 0, 0}),
    [](const auto& info) { return std::string(info.param.label); });

TEST(Utf8Valid, HoldsWhenEveryByteBelongsToAValidSequence) {
  EXPECT_TRUE(utf8::valid(""));
  EXPECT_TRUE(utf8::valid("a€𝄞é"));
  EXPECT_TRUE(utf8::valid("a\0b"sv));  // NUL is valid UTF-8; PostgreSQL's text is what refuses it
  EXPECT_FALSE(utf8::valid("\xFF"));
  EXPECT_FALSE(utf8::valid("ok\xE2\x82"));    // cut short at the end
  EXPECT_FALSE(utf8::valid("\xED\xA0\x80"));  // a surrogate
}

TEST(Utf8Cut, NeverEndsInsideAFourByteCharacter) {
  const std::string_view text = "ab𝄞c";  // the clef is bytes 2 to 5
  EXPECT_EQ(utf8::cut(text, 2), "ab");
  EXPECT_EQ(utf8::cut(text, 3), "ab");
  EXPECT_EQ(utf8::cut(text, 4), "ab");
  EXPECT_EQ(utf8::cut(text, 5), "ab");
  EXPECT_EQ(utf8::cut(text, 6), "ab𝄞");
  EXPECT_EQ(utf8::cut(text, 7), text);
}

TEST(Utf8Cut, KeepsShortTextWholeAndCanCutToNothing) {
  EXPECT_EQ(utf8::cut("abc", 100), "abc");
  EXPECT_EQ(utf8::cut("abc", 3), "abc");
  EXPECT_EQ(utf8::cut("abc", 0), "");
  EXPECT_EQ(utf8::cut("𝄞", 3), "");
  EXPECT_EQ(utf8::cut("", 0), "");
}

// storable_text is built on sequence_length: what PostgreSQL text cannot hold is replaced.
TEST(StorableText, ReplacesNulAndInvalidBytesWithTheReplacementCharacter) {
  EXPECT_EQ(storable_text("ok \xC3\xA9", 100), "ok \xC3\xA9");
  EXPECT_EQ(storable_text("a\0z"sv, 100), "a\xEF\xBF\xBDz");
  EXPECT_EQ(storable_text("\xC0\xAF\xED\xA0\x80", 100),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(StorableText, StopsBeforeACharacterThatWouldPassTheLimit) {
  EXPECT_EQ(storable_text("ab𝄞c", 5), "ab");
  EXPECT_EQ(storable_text("ab𝄞c", 6), "ab𝄞");
  EXPECT_EQ(storable_text("ab\xFF", 4), "ab");
  EXPECT_EQ(storable_text("ab\xFF", 5), "ab\xEF\xBF\xBD");
}

TEST(StorableLine, KeepsNoControlCharacterAReceiverSent) {
  EXPECT_EQ(storable_line("HTTP 429 (Retry-After \"a\tb\r\nc\")", 100),
            "HTTP 429 (Retry-After \"a b  c\")");
  EXPECT_EQ(storable_line("\x1B[31mred\x7F\x01", 100),
            "\xEF\xBF\xBD[31mred\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(storable_line("\xC2\x9B"
                          "2J \xC2\xA0 \xC3\xA9",
                          100),
            "\xEF\xBF\xBD"
            "2J \xC2\xA0 \xC3\xA9");
  EXPECT_EQ(storable_line("a\0z"sv, 100), "a\xEF\xBF\xBDz");
  EXPECT_EQ(storable_line("ab\x1B", 4), "ab");
}

}  // namespace
}  // namespace nudge
