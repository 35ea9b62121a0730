// Schedules in words, without a database: what the parser decides by itself for every phrase of
// the tables (schedule type, interval, cron expression, zone, stop flag, number of fires, whether
// a start or an end was given), every refusal with the word it names, and the tokenizer's rules.

#include "schedule_words.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>

#include "schedule_words_cases.hpp"
#include "support/test_seed.hpp"
#include "word_tokens.hpp"

namespace nudge::test {
namespace {

using nlohmann::json;
namespace words = nudge::api::words;

std::string joined(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& w : list) out += (out.empty() ? "" : " | ") + w;
  return out;
}

TEST(ScheduleWords, EveryAcceptedPhraseGivesTheFieldsItsTextDetermines) {
  int checked = 0;
  for (const auto& c : test::words::kAccepted) {
    SCOPED_TRACE(c.text);
    const auto r = words::parse(c.text, c.zone);
    ASSERT_TRUE(r.schedule.has_value()) << r.refusal.message << ": " << joined(r.refusal.unparsed);
    const words::Schedule& s = *r.schedule;
    const json want = json::parse(c.schedule);
    EXPECT_EQ(s.schedule_type, want["schedule_type"]);
    EXPECT_EQ(s.interval_seconds.has_value(), want.contains("interval_seconds"));
    if (s.interval_seconds) {
      EXPECT_EQ(*s.interval_seconds, want.value("interval_seconds", 0));
    }
    EXPECT_EQ(s.cron.value_or(""), want.value("cron", ""));
    if (want.contains("timezone")) {
      EXPECT_EQ(s.timezone, want["timezone"]);
    }
    EXPECT_EQ(s.stop_flag.value_or(""), want.value("stop_condition_value", ""));
    EXPECT_EQ(s.max_fires.value_or(0), want.value("max_fires", 0));
    EXPECT_EQ(s.ends_at.has_value(), want.contains("ends_at"));
    // "starting today" or "starting now" is a start that the database finds is now: no run_at;
    // "for 2 hours" without a start is counted from now, which the route gives as run_at.
    if (want.contains("run_at") && !s.counted_from_now()) {
      EXPECT_TRUE(s.run_at.has_value());
    }
    ++checked;
  }
  EXPECT_GE(checked, 200);
}

TEST(ScheduleWords, EveryRefusedPhraseNamesTheWordAndSaysWhy) {
  int checked = 0;
  for (const auto& c : test::words::kRefused) {
    SCOPED_TRACE(c.text);
    const auto r = words::parse(c.text, test::words::kZone);
    ASSERT_FALSE(r.schedule.has_value()) << "accepted: " << r.schedule->schedule_type;
    EXPECT_NE(std::find(r.refusal.unparsed.begin(), r.refusal.unparsed.end(), c.word),
              r.refusal.unparsed.end())
        << joined(r.refusal.unparsed);
    EXPECT_NE(r.refusal.message.find(c.because), std::string::npos) << r.refusal.message;
    ++checked;
  }
  // With the database's refusals (tests/api/schedule_words_test.cpp), at least 60 in all.
  EXPECT_GE(checked + static_cast<int>(std::size(test::words::kRefusedByTheDatabase)), 60);
}

TEST(ScheduleWords, CaseExtraSpacesAndCommasDoNotMatter) {
  const auto plain = words::parse("every monday and thursday at 10:30", "UTC");
  const auto noisy = words::parse("  Every ,MONDAY,, and   Thursday  AT 10:30 , ", "UTC");
  ASSERT_TRUE(plain.schedule && noisy.schedule);
  EXPECT_EQ(noisy.schedule->cron, plain.schedule->cron);
  EXPECT_EQ(*plain.schedule->cron, "30 10 * * 1,4");
}

TEST(ScheduleWords, AtAndOnAreOptionalWhereEnglishAllows) {
  for (const auto& [with, without] : std::vector<std::pair<const char*, const char*>>{
           {"on 2026-12-24 at 18:00", "2026-12-24 18:00"},
           {"tomorrow at 9am", "tomorrow 9am"},
           {"on monday at 10:30", "monday 10:30"},
           {"every day at 7pm", "every day 7pm"},
       }) {
    SCOPED_TRACE(without);
    const auto a = words::parse(with, "UTC");
    const auto b = words::parse(without, "UTC");
    ASSERT_TRUE(a.schedule && b.schedule) << b.refusal.message;
    EXPECT_EQ(b.schedule->run_at.has_value() ? b.schedule->run_at->json : json(),
              a.schedule->run_at.has_value() ? a.schedule->run_at->json : json());
    EXPECT_EQ(b.schedule->cron, a.schedule->cron);
  }
}

TEST(ScheduleWords, ABareHourIsOnTheTwentyFourHourClock) {
  const auto r = words::parse("every day at 9", "UTC");
  ASSERT_TRUE(r.schedule);
  EXPECT_EQ(*r.schedule->cron, "0 9 * * *");
  const auto evening = words::parse("every day at 9pm", "UTC");
  ASSERT_TRUE(evening.schedule);
  EXPECT_EQ(*evening.schedule->cron, "0 21 * * *");
}

TEST(ScheduleWords, AFlagThatReadsAsAWordOfTheGrammarMustBeQuoted) {
  // Unquoted, "tomorrow" is the end; quoted, it is the flag.
  const auto end = words::parse("every day at 9 until tomorrow", "UTC");
  ASSERT_TRUE(end.schedule);
  EXPECT_TRUE(end.schedule->ends_at.has_value());
  EXPECT_FALSE(end.schedule->stop_flag.has_value());
  const auto flag = words::parse(R"(every day at 9 until "tomorrow" is true)", "UTC");
  ASSERT_TRUE(flag.schedule);
  EXPECT_EQ(flag.schedule->stop_flag.value_or(""), "tomorrow");
  EXPECT_FALSE(flag.schedule->ends_at.has_value());
  for (const auto& w : words::reserved_words()) {
    SCOPED_TRACE(w);
    const auto quoted = words::parse("every hour until \"" + w + "\"", "UTC");
    ASSERT_TRUE(quoted.schedule) << quoted.refusal.message;
    EXPECT_EQ(quoted.schedule->stop_flag.value_or(""), w);
  }
}

TEST(ScheduleWords, AQuotedStringKeepsItsEscapedQuotesAndBackslashes) {
  const auto tokens = words::tokenize(R"(until "say \"hi\" \\ now" is true)");
  ASSERT_FALSE(tokens.unterminated);
  ASSERT_EQ(tokens.tokens.size(), 4u);
  EXPECT_EQ(tokens.tokens[1].text, R"(say "hi" \ now)");
  EXPECT_TRUE(tokens.tokens[1].is(words::Token::Kind::quoted));
}

TEST(ScheduleWords, TheTokenizerSplitsAmAndPmOffTheirClockButNamesTheWholeWord) {
  const auto tokens = words::tokenize("at 9:30PM, (Europe/Berlin)");
  ASSERT_EQ(tokens.tokens.size(), 4u);
  EXPECT_TRUE(tokens.tokens[1].is(words::Token::Kind::time));
  EXPECT_EQ(tokens.tokens[2].lower, "pm");
  EXPECT_EQ(tokens.tokens[2].word, "9:30PM");
  EXPECT_EQ(tokens.tokens[3].text, "Europe/Berlin");
  const auto refused = words::parse("at 13pm", "UTC");
  ASSERT_FALSE(refused.schedule);
  EXPECT_EQ(refused.refusal.unparsed, std::vector<std::string>{"13pm"});
}

TEST(ScheduleWords, EveryUnknownWordIsNamedInOneAnswer) {
  const auto r = words::parse("please remind me every day at 9 kindly", "UTC");
  ASSERT_FALSE(r.schedule);
  EXPECT_EQ(r.refusal.unparsed, (std::vector<std::string>{"please", "remind", "me", "kindly"}));
}

TEST(ScheduleWords, AnyWordSoupIsUnderstoodOrRefusedNamingWordsOfTheText) {
  const std::uint64_t seed = nudge::test::test_seed();
  std::printf("AnyWordSoup: seed %llu (NUDGE_TEST_SEED replays it)\n",
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::string> vocabulary = words::reserved_words();
  for (const char* w : {"0",
                        "1",
                        "9",
                        "12",
                        "24",
                        "31",
                        "60",
                        "2026",
                        "1st",
                        "22nd",
                        "31st",
                        "9:30",
                        "25:00",
                        "23:59:59.5",
                        "2026-12-24",
                        "2026-02-30",
                        "2026-10-25T02:30:00+01:00",
                        "Europe/Berlin",
                        "Berlin",
                        "New",
                        "York",
                        "done",
                        "\"quoted\"",
                        "\"open",
                        "9am",
                        "13pm",
                        "-5",
                        ",",
                        "(",
                        ")"})
    vocabulary.emplace_back(w);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string text;
    for (int n = std::uniform_int_distribution<int>(1, 9)(rng); n > 0; --n) {
      text +=
          vocabulary[std::uniform_int_distribution<std::size_t>(0, vocabulary.size() - 1)(rng)] +
          " ";
    }
    const auto r = words::parse(text, "UTC");
    if (r.schedule) continue;
    ASSERT_FALSE(r.refusal.message.empty()) << "seed " << seed << ": " << text;
    for (const auto& w : r.refusal.unparsed) {
      ASSERT_NE(text.find(w), std::string::npos) << "seed " << seed << ": " << text << ": " << w;
    }
  }
}

TEST(ScheduleWords, AnEmptyTextIsRefused) {
  const auto r = words::parse(" ,, ", "UTC");
  ASSERT_FALSE(r.schedule);
  EXPECT_EQ(r.refusal.message, "the text is empty");
}

}  // namespace
}  // namespace nudge::test
