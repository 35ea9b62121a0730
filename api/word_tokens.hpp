#pragma once
// The tokenizer of schedules in words: text -> tokens. Spaces, commas and parentheses separate;
// a "double-quoted string" (\" and \\ escaped) is one token; "9am" and "9:30pm" split into the
// number or time and the am/pm. Each token knows the word (the text between separators) it came
// from, so a refusal names what the user wrote.

#include <optional>
#include <string>
#include <vector>

namespace nudge::api::words {

struct Token {
  enum class Kind {
    word,     // letters and anything else: "every", "Europe/Berlin", "feedback_submitted", "-5"
    number,   // digits: "10", "2026"
    ordinal,  // digits with their English suffix: "1st", "22nd", "24th"
    time,     // H:MM or HH:MM, optionally :SS and a fraction: "9:30", "18:00:30.5"
    date,     // YYYY-MM-DD
    instant,  // RFC 3339 with an offset: "2026-10-25T02:30:00+01:00"
    quoted,   // "a quoted string", without its quotes and escapes
  };
  Kind kind = Kind::word;
  std::string text;            // as written (quoted: the unescaped content)
  std::string lower;           // text in lower case, for keywords
  std::string word;            // the word it came from, as written
  std::size_t word_index = 0;  // which word of the text that is (tokens of "9am" share it)
  bool enclosed = false;       // the whole word in parentheses: "(Europe/Berlin)", "(Japan)"
  long long value = 0;         // number, ordinal
  // time: the clock as written (ranges are checked by the grammar); fraction: its digits
  int hour = 0, minute = 0, second = 0;
  bool has_seconds = false;
  std::string fraction;
  // date
  int year = 0, month = 0, day = 0;

  bool is(Kind k) const { return kind == k; }
  bool is_word(const char* w) const { return kind == Kind::word && lower == w; }
};

struct Tokens {
  std::vector<Token> tokens;
  std::optional<std::string> unterminated;  // a quote that never closes: its word
};

Tokens tokenize(const std::string& text);

}  // namespace nudge::api::words
