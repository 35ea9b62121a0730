#pragma once
// UTF-8 in one place: counting characters, checking a sequence, cutting on a character boundary.

#include <cstddef>
#include <string_view>

namespace nudge::utf8 {

// How many characters (code points) `text` holds. Counts every byte that is not a continuation
// byte, which is exact for valid UTF-8 (in invalid text each stray lead byte counts as one).
std::size_t code_points(std::string_view text);

// Length of the valid UTF-8 sequence that starts at text[i] (i < text.size()): 1 to 4, or 0 when
// there is none: a continuation or impossible lead byte, a sequence cut short, an overlong form, a
// surrogate, or a code point past U+10FFFF. A NUL byte is a valid sequence of 1.
std::size_t sequence_length(std::string_view text, std::size_t i);

// Every byte of `text` belongs to a valid sequence (NUL included).
bool valid(std::string_view text);

// The longest start of `text` of at most `max_bytes` that does not end inside a character.
std::string_view cut(std::string_view text, std::size_t max_bytes);

}  // namespace nudge::utf8
