// The email a fire becomes, checked as text without a server (the channel tests send it through
// a real one): its headers, the subject's folding and encoding, the base64 body, the Message-ID,
// the defaults, and the addresses refused before anything is built.

#include "email_message.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "nudge/utf8.hpp"
#include "support/email_fire.hpp"

namespace nudge {
namespace {

using nlohmann::json;
using test::email_fire;

// Sun, 22 Nov 2026 09:00:05 UTC.
const std::chrono::system_clock::time_point kNow{std::chrono::seconds{1795338005}};
constexpr const char* kFrom = "nudge@reminders.example";
constexpr const char* kTo = "alice@example.com";

std::string message_for(const Fire& fire) {
  return email_message(fire, kFrom, kTo, kNow);
}

Fire with_payload(const json& payload) {
  Fire fire = email_fire();
  fire.payload_json = payload.dump();
  return fire;
}

// The header block (every header line with its CRLF) and what follows the blank line.
std::string headers_of(const std::string& message) {
  return message.substr(0, message.find("\r\n\r\n") + 2);
}
std::string body_of(const std::string& message) {
  return message.substr(message.find("\r\n\r\n") + 4);
}

// `text` split at every CRLF (the last line ends with one).
std::vector<std::string> crlf_lines(const std::string& text) {
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < text.size();) {
    const auto end = text.find("\r\n", start);
    if (end == std::string::npos) {
      ADD_FAILURE() << "text does not end with CRLF: " << text.substr(start);
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 2;
  }
  return lines;
}

// The raw value of header `name`, folded lines and all ("a\r\n b").
std::string raw_header(const std::string& message, const std::string& name) {
  const std::string headers = "\r\n" + headers_of(message);
  const auto start = headers.find("\r\n" + name + ": ");
  if (start == std::string::npos) return "<no " + name + " header>";
  const auto value = start + 2 + name.size() + 2;
  auto end = headers.find("\r\n", value);
  while (end + 2 < headers.size() && headers[end + 2] == ' ') end = headers.find("\r\n", end + 2);
  return headers.substr(value, end - value);
}

// RFC 5322 unfolding: a line break followed by white space is the white space alone.
std::string unfold(std::string value) {
  for (auto pos = value.find("\r\n"); pos != std::string::npos; pos = value.find("\r\n", pos))
    value.erase(pos, 2);
  return value;
}

std::string decode_base64(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  EXPECT_GE(n, 0) << "not base64: " << text;
  std::size_t padding = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) ++padding;
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n) - padding);
  return out;
}

// The body as the recipient reads it.
std::string decoded_body(const std::string& message) {
  std::string joined;
  for (const auto& line : crlf_lines(body_of(message))) joined += line;
  return decode_base64(joined);
}

// The encoded words of a Subject value, each decoded on its own.
std::vector<std::string> decoded_words(const std::string& value) {
  std::vector<std::string> words;
  std::istringstream in(unfold(value));
  for (std::string word; in >> word;) {
    const std::string prefix = "=?UTF-8?B?";
    if (word.rfind(prefix, 0) != 0 || word.size() < prefix.size() + 2 ||
        word.compare(word.size() - 2, 2, "?=") != 0) {
      ADD_FAILURE() << "not an encoded word: " << word;
      continue;
    }
    words.push_back(decode_base64(word.substr(prefix.size(), word.size() - prefix.size() - 2)));
  }
  return words;
}

bool is_whole_utf8(const std::string& text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8::sequence_length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

TEST(EmailMessage, HeadersDescribeTheFireFromSenderToRecipient) {
  EXPECT_EQ(headers_of(message_for(email_fire())),
            "Date: Sun, 22 Nov 2026 09:00:05 +0000\r\n"
            "From: nudge@reminders.example\r\n"
            "To: alice@example.com\r\n"
            "Subject: Reminder: feedback_form for interviewer INT_100\r\n"
            "Message-ID: <nudge-4217-2026-11-22T090000.5Z@reminders.example>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "Auto-Submitted: auto-generated\r\n"
            "X-Nudge-Reminder-Id: 4217\r\n"
            "X-Nudge-Attempt: 1\r\n"
            "Idempotency-Key: nudge-4217-2026-11-22T09:00:00.5Z\r\n");
}

TEST(EmailMessage, DateIsTheGivenTimeInUtcToTheSecond) {
  // Mon, 02 Mar 2026 07:04:09.999 UTC: a one-digit day, and the fraction dropped.
  const auto time = std::chrono::system_clock::time_point{std::chrono::seconds{1772435049}} +
                    std::chrono::milliseconds{999};
  EXPECT_EQ(raw_header(email_message(email_fire(), kFrom, kTo, time), "Date"),
            "Mon, 02 Mar 2026 07:04:09 +0000");
}

TEST(EmailMessage, DefaultBodyDescribesTheFireAndItsPayload) {
  EXPECT_EQ(decoded_body(message_for(email_fire())),
            "Reminder: feedback_form for interviewer INT_100\r\n"
            "\r\n"
            "Scheduled for: 2026-11-22T09:00:00.5Z\r\n"
            "Attempt: 1 of 3\r\n"
            "Reminder id: 4217\r\n"
            "Idempotency key: nudge-4217-2026-11-22T09:00:00.5Z\r\n"
            "\r\n"
            "Payload:\r\n"
            "{\r\n"
            "  \"candidate\": \"CAND_7\",\r\n"
            "  \"round\": 2\r\n"
            "}\r\n");
}

TEST(EmailMessage, DefaultBodyLeavesOutAnUnknownAttemptLimitAndKeepsUnparsablePayloadAsItIs) {
  Fire fire = email_fire();
  fire.max_attempts = 0;
  fire.payload_json = "not json";
  const std::string body = decoded_body(message_for(fire));
  EXPECT_NE(body.find("\r\nAttempt: 1\r\n"), std::string::npos) << body;
  EXPECT_NE(body.find("\r\nPayload:\r\nnot json\r\n"), std::string::npos) << body;
}

TEST(EmailMessage, SubjectAndBodyComeFromThePayloadStrings) {
  const std::string message =
      message_for(with_payload({{"subject", "Feedback for CAND_7 is due"}, {"body", "Submit."}}));
  EXPECT_EQ(raw_header(message, "Subject"), "Feedback for CAND_7 is due");
  EXPECT_EQ(decoded_body(message), "Submit.");
}

TEST(EmailMessage, NonStringSubjectAndBodyFallBackToTheDefaults) {
  const std::string message = message_for(with_payload({{"subject", 42}, {"body", {{"x", 1}}}}));
  EXPECT_EQ(raw_header(message, "Subject"), "Reminder: feedback_form for interviewer INT_100");
  EXPECT_EQ(decoded_body(message).rfind("Reminder: feedback_form for interviewer INT_100\r\n", 0),
            0u);
}

TEST(EmailMessage, LongAsciiSubjectIsFoldedAtSpacesAndUnfoldsUnchanged) {
  std::string subject;
  for (int i = 0; i < 30; ++i) subject += "word" + std::to_string(i) + " ";
  subject.pop_back();
  const std::string message = message_for(with_payload({{"subject", subject}}));
  const std::string value = raw_header(message, "Subject");
  EXPECT_NE(value.find("\r\n "), std::string::npos) << "not folded: " << value;
  EXPECT_EQ(unfold(value), subject);
  for (const auto& line : crlf_lines(headers_of(message))) EXPECT_LE(line.size(), 78u) << line;
}

TEST(EmailMessage, AsciiSubjectWithoutSpacesStaysOnOneLine) {
  const std::string subject(120, 'x');
  EXPECT_EQ(raw_header(message_for(with_payload({{"subject", subject}})), "Subject"), subject);
}

TEST(EmailMessage, NonAsciiSubjectIsEncodedWordsThatNeverSplitACharacter) {
  // Long enough for several words, with characters of 2, 3 and 4 bytes at every offset.
  const std::string subject =
      "Rappel : évaluation de Zoë — 面试反馈 ✓ Ünïcödé ÅÄÖ åäö 日本語テキスト ü€𝄞 fin 𝄞𝄞𝄞𝄞𝄞𝄞𝄞𝄞𝄞";
  const std::string message = message_for(with_payload({{"subject", subject}}));
  const std::string value = raw_header(message, "Subject");
  ASSERT_EQ(value.rfind("=?UTF-8?B?", 0), 0u) << value;
  const auto words = decoded_words(value);
  EXPECT_GT(words.size(), 2u);
  std::string joined;
  for (const auto& word : words) {
    EXPECT_TRUE(is_whole_utf8(word)) << "a word splits a character: " << word;
    joined += word;
  }
  EXPECT_EQ(joined, subject);
  for (const auto& line : crlf_lines(headers_of(message))) EXPECT_LE(line.size(), 76u) << line;
}

TEST(EmailMessage, AsciiSubjectThatLooksEncodedOrIsVeryLongIsEncodedToo) {
  for (const std::string& subject : {std::string("=?UTF-8?B?SGk=?="), std::string(901, 'a')}) {
    const std::string message = message_for(with_payload({{"subject", subject}}));
    const std::string value = raw_header(message, "Subject");
    ASSERT_EQ(value.rfind("=?UTF-8?B?", 0), 0u) << value;
    std::string joined;
    for (const auto& word : decoded_words(value)) joined += word;
    EXPECT_EQ(joined, subject);
    for (const auto& line : crlf_lines(headers_of(message))) EXPECT_LE(line.size(), 76u) << line;
  }
}

TEST(EmailMessage, LineBreaksAndControlsInTheSubjectCannotAddHeaders) {
  const std::string message = message_for(with_payload(
      {{"subject", "  Hello\r\nBcc: eve@evil.example\r\n\r\nInjected\tbody\x01\x7f end \n"}}));
  EXPECT_EQ(raw_header(message, "Subject"), "Hello Bcc: eve@evil.example Injected body end");
  const auto lines = crlf_lines(headers_of(message));
  EXPECT_EQ(lines.size(), 12u);
  for (const auto& line : lines) EXPECT_NE(line.rfind("Bcc:", 0), 0u) << line;
}

TEST(EmailMessage, UnicodeLineBreaksAndControlsInTheSubjectBecomeSpacesToo) {
  // U+2028, U+2029, U+0085 (NEL) and another C1 control; é and – stay.
  const std::string subject =
      "Caf\xC3\xA9\xE2\x80\xA8line\xE2\x80\xA9para\xC2\x85next\xC2\x9F"
      "end \xE2\x80\x93 ok";
  const std::string value =
      raw_header(message_for(with_payload({{"subject", subject}})), "Subject");
  std::string joined;
  for (const auto& word : decoded_words(value)) joined += word;
  EXPECT_EQ(joined, "Caf\xC3\xA9 line para next end \xE2\x80\x93 ok");
}

TEST(EmailMessage, BodyLineBreaksBecomeCrlf) {
  const std::string message =
      message_for(with_payload({{"body", "one\ntwo\rthree\r\nfour\n\r\n.\r\nQUIT\r\n"}}));
  EXPECT_EQ(decoded_body(message), "one\r\ntwo\r\nthree\r\nfour\r\n\r\n.\r\nQUIT\r\n");
  // Only base64 is sent, so nothing in the payload can end the SMTP DATA.
  EXPECT_EQ(message.find("\r\n.\r\n"), std::string::npos);
  EXPECT_EQ(message.find("QUIT"), std::string::npos);
}

TEST(EmailMessage, MessageIsSevenBitWithBase64BodyLinesOf76) {
  std::string body;
  for (int i = 0; i < 40; ++i) body += "Zeile " + std::to_string(i) + ": Grüße ✓ 𝄞\n";
  const std::string message = message_for(with_payload({{"body", body}}));
  for (const unsigned char c : message) ASSERT_LT(c, 0x80) << "non-ASCII byte in the message";
  for (const auto& line : crlf_lines(message)) {
    EXPECT_EQ(line.find('\r'), std::string::npos) << "bare CR in: " << line;
    EXPECT_EQ(line.find('\n'), std::string::npos) << "bare LF in: " << line;
  }
  const auto lines = crlf_lines(body_of(message));
  ASSERT_GT(lines.size(), 2u);
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) EXPECT_EQ(lines[i].size(), 76u) << lines[i];
  EXPECT_LE(lines.back().size(), 76u);
  EXPECT_EQ(lines.back().size() % 4, 0u);
  std::string expected;
  for (int i = 0; i < 40; ++i) expected += "Zeile " + std::to_string(i) + ": Grüße ✓ 𝄞\r\n";
  EXPECT_EQ(decoded_body(message), expected);
}

TEST(EmailMessage, ABlankSubjectIsTheDefaultOne) {
  for (const std::string subject : {"", "   ", "\r\n\t"}) {
    EXPECT_EQ(raw_header(message_for(with_payload({{"subject", subject}})), "Subject"),
              "Reminder: feedback_form for interviewer INT_100")
        << subject;
  }
}

TEST(EmailMessage, EmptyBodyIsAnEmptyBase64Part) {
  EXPECT_EQ(body_of(message_for(with_payload({{"body", ""}}))), "");
}

TEST(EmailMessage, MessageIdIsTheSameForEveryAttemptAtAnOccurrence) {
  Fire fire = email_fire();
  const std::string first = raw_header(message_for(fire), "Message-ID");
  fire.attempt = 2;
  EXPECT_EQ(raw_header(message_for(fire), "Message-ID"), first);
  fire.scheduled_for = "2026-11-22 09:10:00+00";
  EXPECT_EQ(raw_header(message_for(fire), "Message-ID"),
            "<nudge-4217-2026-11-22T091000Z@reminders.example>");
  EXPECT_EQ(raw_header(email_message(fire, "nudge@other.example", kTo, kNow), "Message-ID"),
            "<nudge-4217-2026-11-22T091000Z@other.example>");
}

TEST(EmailMessage, MessageIdAndIdempotencyKeyKeepToTheirCharacterSets) {
  Fire fire = email_fire();
  fire.scheduled_for = "2026-11-22 09:00:00+05:30";
  EXPECT_EQ(raw_header(message_for(fire), "Message-ID"),
            "<nudge-4217-2026-11-22T090000+0530@reminders.example>");
  // Text no timestamp would hold: a dot-atom never has two dots in a row or a non-ASCII byte,
  // and the Idempotency-Key header stays printable ASCII.
  fire.scheduled_for = "a b..c\xC3\xA9\x7f";
  const std::string message = message_for(fire);
  EXPECT_EQ(raw_header(message, "Message-ID"), "<nudge-4217-aTb._c___@reminders.example>");
  EXPECT_EQ(raw_header(message, "Idempotency-Key"), "nudge-4217-aTb..c???");
}

TEST(EmailMessage, HeaderSafeKeepsOnlyPrintableAscii) {
  EXPECT_EQ(header_safe("250 ok\r\n\t\x7f\xC3\xA9"), "250 ok??????");
  EXPECT_EQ(header_safe(" !~ plain"), " !~ plain");
}

struct AddressCase {
  std::string address;
  std::optional<std::string> problem;
};

class EmailAddress : public ::testing::TestWithParam<AddressCase> {};

TEST_P(EmailAddress, IsAcceptedOrRefusedWithTheReason) {
  EXPECT_EQ(email_address_problem(GetParam().address), GetParam().problem) << GetParam().address;
}

INSTANTIATE_TEST_SUITE_P(
    AllForms, EmailAddress,
    ::testing::Values(AddressCase{"alice@example.com", std::nullopt},
                      AddressCase{"a.b-c+tag_1@mail.example.co", std::nullopt},
                      AddressCase{std::string(64, 'a') + "@" + std::string(189, 'b'), std::nullopt},
                      AddressCase{"", "it is empty"},
                      AddressCase{std::string(64, 'a') + "@" + std::string(190, 'b'),
                                  "it is longer than 254 characters"},
                      AddressCase{"alice@example.com\r\nBcc: x@y", "it contains a line break"},
                      AddressCase{"alice@example.com\nBcc: x@y", "it contains a line break"},
                      AddressCase{"alice example.com", "it contains white space"},
                      AddressCase{"alice\t@example.com", "it contains white space"},
                      AddressCase{std::string("alice\0@example.com", 18),
                                  "it contains a control character"},
                      AddressCase{"alice\x7f@example.com", "it contains a control character"},
                      AddressCase{"zo\xC3\xAB@example.com", "it contains non-ASCII characters"},
                      AddressCase{"<alice@example.com>", "it contains '<'"},
                      AddressCase{"alice@example.com>RCPT", "it contains '>'"},
                      AddressCase{"\"alice\"@example.com", "it contains '\"'"},
                      AddressCase{"alice@[127.0.0.1]", "it contains '['"},
                      AddressCase{"alice,bob@example.com", "it contains ','"},
                      AddressCase{"alice.example.com", "it has no '@'"},
                      AddressCase{"a@b@c", "it has more than one '@'"},
                      AddressCase{"@example.com", "it has nothing before the '@'"},
                      AddressCase{std::string(65, 'a') + "@example.com",
                                  "it has more than 64 characters before the '@'"},
                      AddressCase{"alice@", "it has no domain after the '@'"},
                      AddressCase{".alice@example.com", "it has a misplaced '.'"},
                      AddressCase{"alice.@example.com", "it has a misplaced '.'"},
                      AddressCase{"alice@exa..mple.com", "it has a misplaced '.'"},
                      AddressCase{"alice@example.com.", "it has a misplaced '.'"}));

}  // namespace
}  // namespace nudge
