// What a body may be, over real connections: nested at most 64 levels deep on every route that
// reads one (100,000 levels crashed nudge-api), at most max_body_bytes once decoded when it comes
// chunked (it was read whole, however large), sent as it is (a gzip body was inflated without a
// limit), and framed by Content-Length or chunked alone.

#include <fstream>
#include <thread>

#include "api/api_fixture.hpp"
#include "support/raw_http.hpp"

namespace nudge::test {
namespace {

constexpr std::size_t kBodyLimit = 262144;  // ApiTest's NUDGE_API_MAX_BODY_BYTES

std::string create_with_payload(const std::string& entity_id, const std::string& payload = "{}") {
  return R"({"entity_type":"user","entity_id":")" + entity_id +
         R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
         R"("run_at":"2099-01-01T00:00:00Z","payload":)" +
         payload + "}";
}

// `depth` arrays nested in one another: [[...]].
std::string nested_arrays_text(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

// `body` as chunks of at most `size` bytes, with the last chunk.
std::string as_chunks(const std::string& body, std::size_t size) {
  std::string out;
  char hex[32];
  for (std::size_t at = 0; at < body.size(); at += size) {
    const std::string part = body.substr(at, size);
    std::snprintf(hex, sizeof hex, "%zx", part.size());
    out += std::string(hex) + "\r\n" + part + "\r\n";
  }
  return out + "0\r\n\r\n";
}

std::string chunked_head(const std::string& method, const std::string& path,
                         const std::string& extra = "") {
  return method + " " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n" +
         extra + "\r\n";
}

json answer_json(const std::optional<RawResponse>& r) {
  return r ? json::parse(r->body, nullptr, false) : json();
}

// The most memory the process has held (VmHWM), in KiB.
long peak_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

using BodyLimits = ApiTest;

TEST_F(BodyLimits, ADeeplyNestedBodyIsA400NamingItsPathOnEveryRouteThatReadsOne) {
  const long id = create_one("nested");
  const auto doc = get("/openapi.json");
  ASSERT_EQ(doc.status, 200);
  int routes = 0;
  for (const auto& [path, item] : doc.body["paths"].items()) {
    for (const std::string method : {"POST", "PUT", "PATCH", "DELETE"}) {
      if (!item.contains(lowercase(method))) continue;
      ++routes;
      SCOPED_TRACE(method + " " + path);
      for (const std::size_t depth : {std::size_t{64}, std::size_t{20000}, std::size_t{100000}}) {
        const Reply r =
            send(method, concrete_path(path, id), R"({"x":)" + nested_arrays_text(depth) + "}");
        EXPECT_EQ(r.status, 400) << r.body.dump().substr(0, 300);
        EXPECT_EQ(r.body["error"]["code"], "invalid_value") << r.body.dump().substr(0, 300);
        EXPECT_EQ(r.error_field().substr(0, 4), "x[0]") << r.body.dump().substr(0, 300);
        EXPECT_NE(r.body["error"]["message"].get<std::string>().find("at most 64 levels"),
                  std::string::npos);
      }
    }
  }
  EXPECT_EQ(routes, 22);
  EXPECT_TRUE(api_->running());
}

TEST_F(BodyLimits, APayloadOrDataNestedToTheLimitIsKeptAndOneLevelMoreIsRefused) {
  // The body is the first level, the payload the second: 62 arrays inside it reach 64.
  const Reply kept =
      post("/v1/reminders", create_with_payload("deep", R"({"a":)" + nested_arrays_text(62) + "}"));
  ASSERT_EQ(kept.status, 201) << kept.body.dump();
  EXPECT_EQ(kept.body["payload"]["a"].dump(), nested_arrays_text(62));
  const Reply refused = post(
      "/v1/reminders", create_with_payload("deeper", R"({"a":)" + nested_arrays_text(63) + "}"));
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(refused.error_field().substr(0, 10), "payload.a[") << refused.body.dump();
  // In a batch item, and in an event's data (which crashed nudge-api too).
  const Reply batch =
      post("/v1/reminders/batch",
           R"({"items":[)" +
               create_with_payload("b", R"({"a":)" + nested_arrays_text(100000) + "}") + "]}");
  EXPECT_EQ(batch.status, 400);
  EXPECT_EQ(batch.error_field().substr(0, 20), "items[0].payload.a[0") << batch.body.dump();
  const Reply event = post("/v1/events", R"({"event_type":"e","entity_type":"u","entity_id":"1",)"
                                         R"("data":{"a":)" +
                                             nested_arrays_text(100000) + "}}");
  EXPECT_EQ(event.status, 400);
  EXPECT_EQ(event.error_field().substr(0, 8), "data.a[0") << event.body.dump();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 1);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.events"), 0);
  EXPECT_TRUE(api_->running());
}

TEST_F(BodyLimits, AChunkedBodyUnderTheLimitIsReadAsAnyOther) {
  std::string items;
  for (int i = 0; i < 100; ++i)
    items += (i > 0 ? "," : "") + create_with_payload("chunked-" + std::to_string(i));
  const std::string body = R"({"items":[)" + items + "]}";
  ASSERT_GT(body.size(), 10000u);
  RawConnection c(port_);
  // In chunks of every size, one byte to 8 KiB, and then the connection serves the next request.
  const auto created =
      c.request(chunked_head("POST", "/v1/reminders/batch") + as_chunks(body, 8192), 10s);
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 200) << created->body.substr(0, 300);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 100);
  const auto flag =
      c.request(chunked_head("PUT", "/v1/flags/chunked") + as_chunks(R"({"value": true})", 1), 10s);
  ASSERT_TRUE(flag);
  EXPECT_EQ(flag->status, 200) << flag->body;
  EXPECT_EQ(answer_json(flag)["value"], true);
  const auto empty = c.request(chunked_head("PUT", "/v1/flags/chunked") + "0\r\n\r\n", 10s);
  ASSERT_TRUE(empty);
  EXPECT_EQ(answer_json(empty)["error"]["field"], "body") << empty->body;
  const auto next = c.request(raw_request("GET", "/v1/flags/chunked"), 5s);
  ASSERT_TRUE(next);
  EXPECT_EQ(answer_json(next)["value"], true);
}

TEST_F(BodyLimits, AClientThatWaitsForContinueBeforeAChunkedBodyIsToldToGoOn) {
  RawConnection c(port_);
  ASSERT_TRUE(c.send(chunked_head("PUT", "/v1/flags/asked", "Expect: 100-continue\r\n")));
  const auto go_on = c.read_response(5s);
  ASSERT_TRUE(go_on);
  EXPECT_EQ(go_on->status, 100);
  const auto set = c.request(as_chunks(R"({"value": false})", 4), 5s);
  ASSERT_TRUE(set);
  EXPECT_EQ(set->status, 200) << set->body;
}

TEST_F(BodyLimits, AChunkedBodyOverTheLimitIs413AndItsRestIsDroppedUnkept) {
  std::string items;
  for (int i = 0; items.size() <= kBodyLimit; ++i)
    items += (i > 0 ? "," : "") + create_with_payload("over-" + std::to_string(i));
  RawConnection c(port_);
  const auto refused = c.request(
      chunked_head("POST", "/v1/reminders/batch") + as_chunks(R"({"items":[)" + items + "]}", 4096),
      10s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  EXPECT_EQ(answer_json(refused)["error"]["code"], "payload_too_large");
  EXPECT_EQ(answer_json(refused)["error"]["field"], "body");
  EXPECT_EQ(answer_json(refused)["error"]["message"],
            "the request body is over 262144 bytes ([api] max_body_bytes)");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
  // The rest of the body was skipped: the connection goes on.
  const auto next = c.request(raw_request("GET", "/health"), 5s);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

// 40 MB sent chunked took the API from 19 MB to 255 MB of memory, and was read to its end.
TEST_F(BodyLimits, AHugeChunkedBodyIsRefusedOnceItPassesTheLimitWithoutBeingHeld) {
  const long before = peak_kib(api_->pid());
  ASSERT_GT(before, 0);
  RawConnection c(port_);
  ASSERT_TRUE(c.send(chunked_head("PUT", "/v1/flags/huge") + "b\r\n{\"value\": \"\r\n"));
  const std::string chunk = "10000\r\n" + std::string(65536, 'b') + "\r\n";
  const auto start = std::chrono::steady_clock::now();
  std::size_t sent = 0;
  // 32 MB unless the server stops taking them (it drops what comes within request_timeout).
  for (; sent < 32 * 1024 * 1024 && c.send(chunk); sent += 65536) {
  }
  const auto refused = c.read_response(10s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413) << refused->body;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  const long grown = peak_kib(api_->pid()) - before;
  EXPECT_LT(grown, 16 * 1024) << "KiB more at the peak after " << sent << " bytes";
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
}

TEST_F(BodyLimits, AMalformedChunkedBodyIsA400AndTheConnectionCloses) {
  for (const std::string& body :
       {std::string("e\r\n{\"value\": true}XX0\r\n\r\n"), std::string("zz\r\n{}\r\n0\r\n\r\n"),
        std::string("2;") + std::string(5000, 'x') + "\r\n{}\r\n0\r\n\r\n"}) {
    SCOPED_TRACE(body.substr(0, 40));
    RawConnection c(port_);
    const auto refused = c.request(chunked_head("PUT", "/v1/flags/bad") + body, 5s);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 400);
    EXPECT_EQ(answer_json(refused)["error"]["field"], "Transfer-Encoding") << refused->body;
    EXPECT_EQ(refused->header("Connection"), "close");
    EXPECT_TRUE(c.closed_by_server(5s));
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
}

// httplib read these until the client closed the connection, however much came.
TEST_F(BodyLimits, ATransferEncodingOtherThanChunkedAloneIsA400AtOnce) {
  for (const std::string& fields :
       {std::string("Transfer-Encoding: identity\r\n"),
        std::string("Transfer-Encoding: gzip, chunked\r\n"),
        std::string("Transfer-Encoding: chunked\r\nContent-Length: 16\r\n")}) {
    SCOPED_TRACE(fields);
    RawConnection c(port_);
    const auto refused = c.request(
        "PUT /v1/flags/te HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + "\r\n{\"value\": true}", 2s);
    ASSERT_TRUE(refused) << "no answer at once";
    EXPECT_EQ(refused->status, 400);
    EXPECT_EQ(answer_json(refused)["error"]["field"], "Transfer-Encoding") << refused->body;
    EXPECT_TRUE(c.closed_by_server(5s));
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
}

// 200 KB of gzip inflated to 200 MB in the API's memory.
TEST_F(BodyLimits, ACompressedBodyIsA415) {
  for (const std::string coding : {"gzip", "deflate", "br", "zstd"}) {
    SCOPED_TRACE(coding);
    const auto r = client_->Put("/v1/flags/packed", {{"Content-Encoding", coding}},
                                std::string("\x1f\x8b\x08\x00", 4), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 415);
    const json body = json::parse(r->body, nullptr, false);
    EXPECT_EQ(body["error"]["code"], "unsupported_encoding") << r->body;
    EXPECT_EQ(body["error"]["field"], "Content-Encoding") << r->body;
  }
  const auto plain = client_->Put("/v1/flags/packed", {{"Content-Encoding", "identity"}},
                                  R"({"value": true})", "application/json");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200) << plain->body;
}

// httplib filed a multipart/form-data body under its files and left the body empty: curl -F on
// pause paused the reminder, and PUT /v1/flags said the body was missing (explore14a #2).
TEST_F(BodyLimits, AMultipartBodyIsA415NamingContentTypeAndChangesNothing) {
  const long id = create_one("multipart");
  const std::string pause = "/v1/reminders/" + std::to_string(id) + "/pause";
  const httplib::MultipartFormDataItems form = {{"note", "hello", "", ""}};
  for (const auto& r :
       {client_->Post(pause, form), client_->Put("/v1/flags/multi", form),
        client_->Delete("/v1/flags/multi", R"({})", "multipart/mixed"),
        client_->Put("/v1/flags/multi", R"({"value": true})", "Multipart/Form-Data")}) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 415) << r->body;
    const json body = json::parse(r->body, nullptr, false);
    EXPECT_EQ(body["error"]["code"], "unsupported_media_type") << r->body;
    EXPECT_EQ(body["error"]["field"], "Content-Type") << r->body;
  }
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(id)).body["status"], "ACTIVE");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
  // curl -d (form-encoded) is still read as the JSON it holds.
  const auto form_encoded =
      client_->Put("/v1/flags/multi", R"({"value": true})", "application/x-www-form-urlencoded");
  ASSERT_TRUE(form_encoded);
  EXPECT_EQ(form_encoded->status, 200) << form_encoded->body;
}

}  // namespace
}  // namespace nudge::test
