// GET /v1/stream and tokens: a stream lives only as long as its token grants read (revoked,
// deleted or its scope read taken away, announced or not, the stream is told and ends; the
// streams of other tokens go on), and one token holds at most [api] max_streams_per_token of the
// server's streams.

#include "api/api_fixture.hpp"
#include "support/sse_client.hpp"

namespace nudge::test {
namespace {

// Well under token_cache_seconds (30): an announced revocation ends a stream at once, not when
// the periodic re-check comes. The rest is for a loaded machine.
constexpr auto kTokenWait = 10s;

class StreamTokens : public ApiTest {
 protected:
  explicit StreamTokens(std::map<std::string, std::string> settings = {})
      : ApiTest(with_auth(std::move(settings))) {}
  static std::map<std::string, std::string> with_auth(std::map<std::string, std::string> s) {
    s.emplace("NUDGE_API_AUTH", "token");
    s.emplace("NUDGE_API_MAX_STREAMS", "10");
    s.emplace("NUDGE_API_MAX_STREAMS_PER_TOKEN", "2");
    s.emplace("NUDGE_API_STREAM_HEARTBEAT_SECONDS", "1");
    return s;
  }

  std::unique_ptr<SseClient> open_with(const std::string& token, bool in_query = false) {
    auto s = in_query ? std::make_unique<SseClient>(port_, "/v1/stream?access_token=" + token)
                      : std::make_unique<SseClient>(port_, "/v1/stream",
                                                    "Authorization: Bearer " + token + "\r\n");
    EXPECT_EQ(s->answer().status, 200) << s->answer().body;
    return s;
  }

  // The stream's next event but the flags set before is `revoked`, naming the token, and then
  // the stream ends.
  void expect_ended(SseClient& s, const std::string& name) {
    auto m = s.next_event(kTokenWait);
    while (m && m->event == "flag") m = s.next_event(kTokenWait);
    ASSERT_TRUE(m.has_value()) << "the stream of " << name << " got no revoked event";
    EXPECT_EQ(m->event, "revoked") << m->data;
    const json data = m->json();
    EXPECT_EQ(data["error"]["code"], "unauthorized") << m->data;
    EXPECT_NE(data["error"]["message"].get<std::string>().find("token " + name + " "),
              std::string::npos)
        << m->data;
    EXPECT_FALSE(s.next(2s).has_value());
    EXPECT_TRUE(s.ended());
  }

  // The stream goes on: a flag set now arrives on it (after those set before).
  void expect_alive(SseClient& s, const std::string& key) {
    sql("SELECT nudge.set_flag($1, true)", key);
    while (true) {
      const auto m = s.next_event(kTokenWait);
      ASSERT_TRUE(m.has_value()) << "no flag " << key << " came";
      ASSERT_EQ(m->event, "flag") << m->data;
      if (m->json()["flag"]["key"] == key) return;
    }
  }
};

TEST_F(StreamTokens, ARevokedTokensStreamsEndAtOnceWhileAnotherTokensStreamGoesOn) {
  const std::string revoked = make_token("revoked", "read");
  const std::string other = make_token("other", "read");
  auto by_header = open_with(revoked);
  auto by_query = open_with(revoked, /*in_query=*/true);
  auto others = open_with(other);
  expect_alive(*by_header, "before");

  sql("SELECT nudge.revoke_token('revoked')");
  expect_ended(*by_header, "revoked");
  expect_ended(*by_query, "revoked");
  expect_alive(*others, "after");
  EXPECT_EQ(SseClient(port_, "/v1/stream?access_token=" + revoked).answer().status, 401);
}

TEST_F(StreamTokens, AStreamEndsWhenItsTokenIsDeletedOrLosesReadAndGoesOnWhenItKeepsRead) {
  const std::string deleted = make_token("deleted", "read");
  const std::string narrowed = make_token("narrowed", "read,write");
  const std::string widened = make_token("widened", "read");
  auto deleted_stream = open_with(deleted);
  auto narrowed_stream = open_with(narrowed);
  auto widened_stream = open_with(widened);

  sql("DELETE FROM nudge.api_tokens WHERE name = 'deleted'");
  sql("UPDATE nudge.api_tokens SET scopes = '{write}' WHERE name = 'narrowed'");
  sql("UPDATE nudge.api_tokens SET scopes = '{read,admin}' WHERE name = 'widened'");
  expect_ended(*deleted_stream, "deleted");
  expect_ended(*narrowed_stream, "narrowed");
  expect_alive(*widened_stream, "still-read");
}

TEST_F(StreamTokens, ATokenPastItsStreamCapIs429WhileAnotherTokenStillGetsOne) {
  const std::string busy = make_token("busy", "read");
  const std::string other = make_token("other", "read");
  auto first = open_with(busy);
  auto second = open_with(busy, /*in_query=*/true);  // both ways count for the token

  SseClient refused(port_, "/v1/stream", "Authorization: Bearer " + busy + "\r\n");
  EXPECT_EQ(refused.answer().status, 429);
  EXPECT_EQ(refused.answer().header("Retry-After"), "5");
  const json body = json::parse(refused.answer().body, nullptr, false);
  EXPECT_EQ(body["error"]["code"], "too_many_streams") << refused.answer().body;
  EXPECT_NE(body["error"]["message"].get<std::string>().find("max_streams_per_token"),
            std::string::npos);
  auto others = open_with(other);
  expect_alive(*first, "busy-goes-on");

  // Closing one frees its place, once the server has seen the connection close.
  second.reset();
  EXPECT_TRUE(wait_until(kTokenWait, [&] {
    return SseClient(port_, "/v1/stream?access_token=" + busy).answer().status == 200;
  }));
}

class StreamTokensUnheard : public StreamTokens {
 protected:
  StreamTokensUnheard() : StreamTokens({{"NUDGE_API_TOKEN_CACHE_SECONDS", "1"}}) {}
};

// A revocation nobody announced (as if the API missed the notification): the periodic re-check,
// every token_cache_seconds, ends the stream.
TEST_F(StreamTokensUnheard, AnUnannouncedRevocationEndsTheStreamWithinTokenCacheSeconds) {
  const std::string token = make_token("quiet", "read");
  auto s = open_with(token);
  sql("ALTER TABLE nudge.api_tokens DISABLE TRIGGER api_token_change_is_announced");
  sql("UPDATE nudge.api_tokens SET revoked_at = now() WHERE name = 'quiet'");
  expect_ended(*s, "quiet");
}

class StreamTokensOff : public ApiTest {
 protected:
  StreamTokensOff() : ApiTest({{"NUDGE_API_MAX_STREAMS_PER_TOKEN", "1"}}) {}
};

// Without auth there is no token to count by: max_streams alone applies.
TEST_F(StreamTokensOff, WithoutAuthThePerTokenCapDoesNotApply) {
  SseClient first(port_, "/v1/stream");
  SseClient second(port_, "/v1/stream");
  EXPECT_EQ(first.answer().status, 200);
  EXPECT_EQ(second.answer().status, 200);
}

}  // namespace
}  // namespace nudge::test
