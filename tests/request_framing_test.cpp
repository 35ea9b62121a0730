// Where a request ends in the bytes received so far (api/request_framing.hpp), case by case.
// No sockets needed: the API suite drives the same code over real connections.

#include "request_framing.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace nudge::api {
namespace {

constexpr std::size_t kMaxBody = 1000000;

struct FramingCase {
  std::string name;
  std::string bytes;
  bool ready;
  std::size_t head_size;
  std::optional<std::size_t> body_size;
  bool lacks_length;
  bool close_after;
};

const std::string kGet = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
const std::string kPostHead = "POST /v1/reminders HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";

const std::vector<FramingCase> kCases = {
    {"HeadWithoutBodyLengthHasAnEmptyBody", kGet, true, kGet.size(), 0, true, false},
    {"RequestLineAloneHasAnEmptyBody", "POST /x HTTP/1.1\r\n\r\n", true, 20, 0, true, false},
    {"HeadNotYetEndedWaits", "GET /health HTTP/1.1\r\nHost: a\r\n", false, 0, std::nullopt, false,
     false},
    {"BodyNotYetCompleteWaits", kPostHead + "abc", false, kPostHead.size(), 5, false, false},
    {"CompleteBodyIsReady", kPostHead + "abcde", true, kPostHead.size(), 5, false, false},
    {"BytesOfTheNextRequestAreNotPartOfThisOne", kPostHead + "abcde" + kGet, true, kPostHead.size(),
     5, false, false},
    {"HeaderNamesAnyCaseAndValuesWithSpaces", "PUT /f HTTP/1.1\r\ncontent-LENGTH:   2  \r\n\r\n{}",
     true, 42, 2, false, false},
    {"ChunkedBodyIsReadAsItComes", "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n",
     true, 48, std::nullopt, false, false},
    {"ContinueIsAnsweredBeforeTheBody",
     "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n", true, 61, 9, false,
     false},
    {"BodyLargerThanAllowedIsHandedOnAtOnce", "POST /x HTTP/1.1\r\nContent-Length: 1000001\r\n\r\n",
     true, 45, 1000001, false, false},
    {"LongBodyWaitsForItsFirstPart",
     "POST /x HTTP/1.1\r\nContent-Length: 200000\r\n\r\n" + std::string(65535, 'x'), false, 44,
     200000, false, false},
    {"LongBodyIsHandedOnWithItsFirstPart",
     "POST /x HTTP/1.1\r\nContent-Length: 200000\r\n\r\n" + std::string(65536, 'x'), true, 44,
     200000, false, false},
    {"UnreadableLengthClosesAfterTheAnswer", "POST /x HTTP/1.1\r\nContent-Length: 5x\r\n\r\n", true,
     40, std::nullopt, false, true},
    {"NegativeLengthClosesAfterTheAnswer", "POST /x HTTP/1.1\r\nContent-Length: -5\r\n\r\n", true,
     40, std::nullopt, false, true},
    {"LengthPastSizeTClosesAfterTheAnswer",
     "POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", true, 58, std::nullopt,
     false, true},
    {"LengthOfNineteenDigitsIsLargerThanAllowed",
     "POST /x HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n", true, 57,
     9999999999999999999u, false, false},
    {"TwoLengthsCloseAfterTheAnswer",
     "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab", true, 58, std::nullopt,
     false, true},
    {"HeadTooLongIsHandedOnAndClosed", "GET /" + std::string(kMaxHeadBytes, 'a'), true, 0,
     std::nullopt, false, true},
};

class Framing : public ::testing::TestWithParam<FramingCase> {};

TEST_P(Framing, SaysWhetherTheRequestIsCompleteAndHowLong) {
  const FramingCase& c = GetParam();
  const RequestFraming f = frame_request(c.bytes, kMaxBody);
  EXPECT_EQ(f.ready, c.ready);
  EXPECT_EQ(f.head_size, c.head_size);
  EXPECT_EQ(f.body_size, c.body_size);
  EXPECT_EQ(f.lacks_length, c.lacks_length);
  EXPECT_EQ(f.close_after, c.close_after);
}

INSTANTIATE_TEST_SUITE_P(Cases, Framing, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace nudge::api
