// Where a request ends in the bytes received so far (api/request_framing.hpp), and how a chunked
// body is decoded, case by case. No sockets needed: the API suite drives the same code over real
// connections.

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
    {"HeadTooLongIsRefusedAndClosed", "GET /" + std::string(kMaxHeadBytes, 'a'), true, 0,
     std::nullopt, false, true},
    {"HeadOfManyShortLinesTooLongIsRefused",
     [] {
       std::string head = "GET / HTTP/1.1\r\n";
       while (head.size() < kMaxHeadBytes) head += "X: y\r\n";
       return head;
     }(),
     true, 0, std::nullopt, false, true},
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
  // Only a head with no end within kMaxHeadBytes is refused unread (431).
  EXPECT_EQ(f.head_too_large, c.ready && c.head_size == 0);
}

INSTANTIATE_TEST_SUITE_P(Cases, Framing, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

// Only "chunked" alone is decoded; any other Transfer-Encoding, or one beside a Content-Length,
// is refused and the connection closed after the answer (httplib would read it until the client
// closes).
TEST(TransferEncoding, OnlyChunkedAloneIsDecodedAndAnythingElseClosesTheConnection) {
  const std::string head = "POST /x HTTP/1.1\r\nHost: a\r\n";
  const struct {
    std::string fields;
    bool chunked;
  } cases[] = {
      {"Transfer-Encoding: chunked\r\n", true},
      {"transfer-encoding:  CHUNKED \r\n", true},
      {"Transfer-Encoding: identity\r\n", false},
      {"Transfer-Encoding: gzip, chunked\r\n", false},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", false},
      {"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.fields);
    const RequestFraming f = frame_request(head + c.fields + "\r\n", kMaxBody);
    EXPECT_TRUE(f.ready);
    EXPECT_EQ(f.chunked, c.chunked);
    EXPECT_EQ(f.close_after, !c.chunked);
    EXPECT_FALSE(f.body_size);
  }
  EXPECT_TRUE(
      frame_request(head + "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", kMaxBody)
          .expect_continue);
}

// A head that is not CRLF lines of "name: value" is refused as soon as that shows: httplib
// skipped a header line without a colon, and waited out the deadline for a head of bare LFs
// (explore14a #14).
TEST(MalformedHead, ABareLfOrAFieldThatIsNotNameColonValueIsRefusedAtOnce) {
  for (const std::string bytes :
       {"GET /health HTTP/1.1\n", "GET /health HTTP/1.1\r\nHost: a\n\n",
        "GET /health HTTP/1.1\r\nHost: a\r\nX-Half: b\n", "\n",
        "GET /health HTTP/1.1\r\nHost a\r\n\r\n", "GET /health HTTP/1.1\r\n: a\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"}) {
    SCOPED_TRACE(bytes);
    const RequestFraming f = frame_request(bytes, kMaxBody);
    EXPECT_TRUE(f.ready);
    EXPECT_TRUE(f.head_malformed);
    EXPECT_TRUE(f.close_after);
  }
  // A head still arriving, a value holding colons or spaces, and a body holding bare LFs are not.
  for (const std::string bytes :
       {"GET /health HTTP/1.1\r\nHost: a\r", "GET /health HTTP/1.1\r\nHost a",
        "GET /h HTTP/1.1\r\nX-Time:  10:00 \t\r\nX-Empty:\r\n\r\n",
        "POST /h HTTP/1.1\r\nContent-Length: 4\r\n\r\n\n\na\n"}) {
    SCOPED_TRACE(bytes);
    EXPECT_FALSE(frame_request(bytes, kMaxBody).head_malformed);
  }
}

struct ChunkCase {
  std::string name;
  std::string bytes;
  ChunkDecoder::State state;
  std::string data;
  std::size_t used;  // of bytes
};

using State = ChunkDecoder::State;
const std::string kNext = "GET / HTTP/1.1\r\n\r\n";

const std::vector<ChunkCase> kChunkCases = {
    {"OneChunk", "5\r\nhello\r\n0\r\n\r\n", State::done, "hello", 15},
    {"SeveralChunksWithHexSizes", "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n", State::done,
     "abc0123456789", 28},
    {"EmptyBody", "0\r\n\r\n", State::done, "", 5},
    {"ExtensionsAreIgnored", "3;name=value ; x\r\nabc\r\n0;last\r\n\r\n", State::done, "abc", 33},
    {"TrailerFieldsAreDropped", "3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", State::done,
     "abc", 35},
    {"TheNextRequestIsLeftUnread", "2\r\nab\r\n0\r\n\r\n" + kNext, State::done, "ab", 12},
    {"AnUnfinishedBodyWantsMore", "5\r\nhel", State::more, "hel", 6},
    {"AChunkWithoutItsLineEndIsMalformed", "3\r\nabcX\r\n0\r\n\r\n", State::malformed, "abc", 6},
    {"ASizeThatIsNotHexIsMalformed", "g\r\n", State::malformed, "", 0},
    {"AnEmptySizeIsMalformed", "\r\nabc", State::malformed, "", 0},
    {"ABareLineFeedIsMalformed", "3\nabc", State::malformed, "", 1},
    {"ASizeOfSixteenHexDigitsIsMalformed", "1000000000000000\r\n", State::malformed, "", 15},
    {"AnEndlessExtensionIsMalformed", "1;" + std::string(5000, 'x'), State::malformed, "", 4098},
};

class Chunks : public ::testing::TestWithParam<ChunkCase> {};

TEST_P(Chunks, DecodeWhateverWayTheBytesArrive) {
  const ChunkCase& c = GetParam();
  {
    SCOPED_TRACE("all at once");
    ChunkDecoder d;
    std::string data;
    EXPECT_EQ(d.feed(c.bytes, &data), c.used);
    EXPECT_EQ(d.state(), c.state);
    EXPECT_EQ(data, c.data);
    EXPECT_EQ(d.data_size(), c.data.size());
  }
  {
    SCOPED_TRACE("a byte at a time");
    ChunkDecoder d;
    std::string data;
    std::size_t used = 0;
    for (std::size_t i = 0; i < c.bytes.size() && d.state() == State::more; ++i)
      used += d.feed(std::string_view(c.bytes).substr(i, 1), &data);
    EXPECT_EQ(used, c.used);
    EXPECT_EQ(d.state(), c.state);
    EXPECT_EQ(data, c.data);
  }
  {
    SCOPED_TRACE("dropped");
    ChunkDecoder d;
    EXPECT_EQ(d.feed(c.bytes, nullptr), c.used);
    EXPECT_EQ(d.state(), c.state);
    EXPECT_EQ(d.data_size(), c.data.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Chunks, ::testing::ValuesIn(kChunkCases),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace nudge::api
