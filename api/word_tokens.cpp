#include "word_tokens.hpp"

#include <cctype>
#include <charconv>

#include "input.hpp"
#include "text_input.hpp"

namespace nudge::api::words {
namespace {

bool is_separator(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0 || c == ',' || c == '(' || c == ')';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool all_digits(const std::string& s, std::size_t from, std::size_t to) {
  if (from >= to) return false;
  for (std::size_t i = from; i < to; ++i) {
    if (!is_digit(s[i])) return false;
  }
  return true;
}

// digits, at most ten of them (max_fires' 2147483647 has ten; a larger number is nothing the
// grammar takes)
std::optional<long long> number_of(const std::string& s) {
  if (s.size() > 10 || !all_digits(s, 0, s.size())) return std::nullopt;
  long long v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

const char* ordinal_suffix(long long n) {
  if (n % 100 >= 11 && n % 100 <= 13) return "th";
  switch (n % 10) {
    case 1:
      return "st";
    case 2:
      return "nd";
    case 3:
      return "rd";
    default:
      return "th";
  }
}

// H:MM, HH:MM, HH:MM:SS, HH:MM:SS.fraction
bool read_time(const std::string& s, Token& t) {
  const auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 2 || !all_digits(s, 0, colon))
    return false;
  if (s.size() < colon + 3 || !all_digits(s, colon + 1, colon + 3)) return false;
  t.hour = static_cast<int>(*number_of(s.substr(0, colon)));
  t.minute = static_cast<int>(*number_of(s.substr(colon + 1, 2)));
  std::size_t at = colon + 3;
  if (at == s.size()) return true;
  if (s[at] != ':' || s.size() < at + 3 || !all_digits(s, at + 1, at + 3)) return false;
  t.second = static_cast<int>(*number_of(s.substr(at + 1, 2)));
  t.has_seconds = true;
  at += 3;
  if (at == s.size()) return true;
  if (s[at] != '.' || at + 1 == s.size() || s.size() - at - 1 > 6 ||
      !all_digits(s, at + 1, s.size()))
    return false;
  t.fraction = s.substr(at + 1);
  return true;
}

// YYYY-MM-DD
bool read_date(const std::string& s, Token& t) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !all_digits(s, 0, 4) ||
      !all_digits(s, 5, 7) || !all_digits(s, 8, 10))
    return false;
  t.year = static_cast<int>(*number_of(s.substr(0, 4)));
  t.month = static_cast<int>(*number_of(s.substr(5, 2)));
  t.day = static_cast<int>(*number_of(s.substr(8, 2)));
  return true;
}

Token classify(const std::string& text, const std::string& word) {
  Token t;
  t.text = text;
  t.lower = ascii_lower(text);
  t.word = word;
  if (const auto n = number_of(text)) {
    t.kind = Token::Kind::number;
    t.value = *n;
  } else if (text.size() > 2 && all_digits(text, 0, text.size() - 2) &&
             number_of(text.substr(0, text.size() - 2)) &&
             t.lower.substr(text.size() - 2) ==
                 ordinal_suffix(*number_of(text.substr(0, text.size() - 2)))) {
    t.kind = Token::Kind::ordinal;
    t.value = *number_of(text.substr(0, text.size() - 2));
  } else if (read_time(text, t)) {
    t.kind = Token::Kind::time;
  } else if (read_date(text, t)) {
    t.kind = Token::Kind::date;
  } else if (text.size() > 10 && (text[10] == 'T' || text[10] == 't') && is_rfc3339(text)) {
    t.kind = Token::Kind::instant;
  }
  return t;
}

// "9am", "12:30PM": the clock part and am/pm as two tokens of one word.
void add_word(const std::string& word, std::size_t index, bool enclosed, std::vector<Token>& out) {
  const std::string low = ascii_lower(word);
  std::vector<Token> parts;
  Token clock;
  if (word.size() > 2 && (low.ends_with("am") || low.ends_with("pm")) &&
      ((clock = classify(word.substr(0, word.size() - 2), word)).is(Token::Kind::number) ||
       clock.is(Token::Kind::time))) {
    parts = {clock, classify(word.substr(word.size() - 2), word)};
  } else {
    parts = {classify(word, word)};
  }
  for (auto& t : parts) {
    t.word_index = index;
    t.enclosed = enclosed && parts.size() == 1;
    out.push_back(std::move(t));
  }
}

}  // namespace

Tokens tokenize(const std::string& text) {
  Tokens out;
  std::size_t i = 0;
  std::size_t words = 0;
  while (i < text.size()) {
    if (is_separator(text[i])) {
      ++i;
      continue;
    }
    if (text[i] == '"') {
      std::string content;
      std::size_t j = i + 1;
      bool closed = false;
      for (; j < text.size(); ++j) {
        if (text[j] == '\\' && j + 1 < text.size()) {
          content += text[++j];
        } else if (text[j] == '"') {
          closed = true;
          break;
        } else {
          content += text[j];
        }
      }
      if (!closed) {
        out.unterminated = text.substr(i);
        return out;
      }
      Token t;
      t.kind = Token::Kind::quoted;
      t.text = content;
      t.lower = ascii_lower(content);
      t.word = text.substr(i, j + 1 - i);
      t.word_index = words++;
      out.tokens.push_back(std::move(t));
      i = j + 1;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && !is_separator(text[j]) && text[j] != '"') ++j;
    const bool enclosed = i > 0 && text[i - 1] == '(' && j < text.size() && text[j] == ')';
    add_word(text.substr(i, j - i), words++, enclosed, out.tokens);
    i = j;
  }
  return out;
}

}  // namespace nudge::api::words
