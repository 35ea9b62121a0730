// The dashboard (/, /ui/...) and the API docs (/docs, /docs/...): files compiled into nudge-api,
// served byte for byte with their content type, an ETag that a browser revalidates against, and
// no data in them. And GET /v1/overview, which the dashboard's first view reads.

#include <fstream>
#include <sstream>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using Dashboard = ApiTest;

std::string source_file(const std::string& path) {
  std::ifstream in(std::string(NUDGE_SOURCE_DIR) + "/" + path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct PageCase {
  std::string url;
  std::string file;  // in the repository
  std::string content_type;
};

TEST_F(Dashboard, ServesEveryPageFileByteForByteWithItsContentTypeAndCacheHeaders) {
  const std::vector<PageCase> cases = {
      {"/", "api/dashboard/index.html", "text/html; charset=utf-8"},
      {"/ui/app.js", "api/dashboard/app.js", "text/javascript; charset=utf-8"},
      {"/ui/style.css", "api/dashboard/style.css", "text/css; charset=utf-8"},
      {"/docs", "api/docs/index.html", "text/html; charset=utf-8"},
      {"/docs/init.js", "api/docs/init.js", "text/javascript; charset=utf-8"},
      {"/docs/swagger-ui.css", "api/docs/swagger-ui.css", "text/css; charset=utf-8"},
      // 1.7 MB with NUL bytes inside: embedded as bytes, not as a C++ string literal.
      {"/docs/swagger-ui-bundle.js", "api/docs/swagger-ui-bundle.js",
       "text/javascript; charset=utf-8"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.url);
    const auto r = client_->Get(c.url.c_str());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    const std::string expected = source_file(c.file);
    ASSERT_FALSE(expected.empty());
    EXPECT_TRUE(r->body == expected) << r->body.size() << " bytes, expected " << expected.size();
    EXPECT_EQ(r->get_header_value("Content-Type"), c.content_type);
    EXPECT_EQ(r->get_header_value("Cache-Control"), "no-cache");
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_NE(r->get_header_value("Content-Security-Policy").find("default-src 'self'"),
              std::string::npos);
    EXPECT_EQ(r->get_header_value("ETag").size(), 22u);  // 20 hex digits, quoted
  }
}

TEST_F(Dashboard, AnUnchangedFileIsAnswered304AgainstItsETag) {
  const auto first = client_->Get("/ui/app.js");
  ASSERT_TRUE(first);
  const std::string etag = first->get_header_value("ETag");
  const auto again = client_->Get("/ui/app.js", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  EXPECT_EQ(again->get_header_value("ETag"), etag);
  const auto stale = client_->Get("/ui/app.js", {{"If-None-Match", "\"0000\""}});
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 200);
  // Each file has its own tag.
  EXPECT_NE(client_->Get("/ui/style.css")->get_header_value("ETag"), etag);
  // In a list, weak, or any.
  for (const std::string& list : {"\"0000\", " + etag, "W/" + etag, std::string("*")}) {
    const auto listed = client_->Get("/ui/app.js", {{"If-None-Match", list}});
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->status, 304) << list;
  }
}

// The gzip form is another representation with its own tag: with one tag for both, a cache
// could answer a client that takes no gzip with the gzip form (explore15b). Either tag is
// current for either form.
TEST_F(Dashboard, TheGzipFormOfAFileHasItsOwnETag) {
  const auto plain = client_->Get("/ui/app.js", {{"Accept-Encoding", "identity"}});
  const auto gz = client_->Get("/ui/app.js", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(plain && gz);
  EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
  const std::string plain_tag = plain->get_header_value("ETag");
  const std::string gzip_tag = gz->get_header_value("ETag");
  EXPECT_EQ(gzip_tag, plain_tag.substr(0, plain_tag.size() - 1) + "-gzip\"");
  for (const auto& [encoding, tag] : std::vector<std::pair<std::string, std::string>>{
           {"gzip", plain_tag}, {"identity", gzip_tag}, {"gzip", gzip_tag}}) {
    const auto again =
        client_->Get("/ui/app.js", {{"Accept-Encoding", encoding}, {"If-None-Match", tag}});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304) << encoding << " " << tag;
  }
}

TEST_F(Dashboard, AFileThatIsNotThereIs404AndOnlyGetIsAllowed) {
  for (const std::string path :
       {"/ui/nothing.js", "/docs/LICENSE", "/docs/README.md", "/ui/..%2Fopenapi.json"}) {
    const auto r = get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body["error"]["code"], "not_found") << path;
  }
  const auto r = post("/", "{}");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.body["error"]["code"], "method_not_allowed");
}

// httplib would answer a browser (which accepts br) with brotli at quality 11: 28 s for the docs'
// script. Answers come gzipped instead, or plain.
TEST_F(Dashboard, AnswersToBrowsersAreGzippedNeverBrotliCompressed) {
  const auto started = std::chrono::steady_clock::now();
  const auto gz =
      client_->Get("/docs/swagger-ui-bundle.js", {{"Accept-Encoding", "gzip, deflate, br, zstd"}});
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->status, 200);
  EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
  EXPECT_TRUE(gz->body == source_file("api/docs/swagger-ui-bundle.js"));  // decompressed
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);             // brotli took 28 s
  const auto only_br = client_->Get("/openapi.json", {{"Accept-Encoding", "br;q=1.0"}});
  ASSERT_TRUE(only_br);
  EXPECT_EQ(only_br->status, 200);
  EXPECT_FALSE(only_br->has_header("Content-Encoding"));
  EXPECT_TRUE(json::parse(only_br->body).contains("paths"));
}

// gzip;q=0 refuses gzip, and was answered with it: httplib looks for "gzip" anywhere in the
// header (explore14a #10).
TEST_F(Dashboard, AnswersAreGzippedOnlyWhenGzipIsAccepted) {
  const std::map<std::string, std::string> kEncodingFor = {
      {"gzip", "gzip"},
      {"gzip;q=0.5, br", "gzip"},
      {"*", "gzip"},
      {"GZIP; Q=1", "gzip"},
      {"br, *;q=0.1", "gzip"},
      {"gzip;q=0", ""},
      {"gzip; q=0.0, br", ""},
      {"*;q=0", ""},
      {"identity", ""},
      {"*, gzip;q=0", ""},
      {"deflate, br", ""},
      {"identity;q=1, *;q=0", ""},
      // identity preferred (explore15b #9), or not
      {"gzip;q=0.5, identity;q=1", ""},
      {"gzip, identity;q=0.5", "gzip"}};
  for (const auto& [accept, encoding] : kEncodingFor) {
    SCOPED_TRACE(accept);
    for (const std::string path : {"/openapi.json", "/v1/nothing-here"}) {
      const auto r = client_->Get(path, {{"Accept-Encoding", accept}});
      ASSERT_TRUE(r);
      EXPECT_EQ(r->get_header_value("Content-Encoding"), encoding) << path;
      EXPECT_TRUE(json::parse(r->body, nullptr, false).is_object()) << path;
    }
  }
}

TEST_F(Dashboard, ThePageLoadsNothingFromOutside) {
  for (const std::string file : {"api/dashboard/index.html", "api/docs/index.html"}) {
    const std::string html = source_file(file);
    EXPECT_EQ(html.find("http://"), std::string::npos) << file;
    EXPECT_EQ(html.find("https://"), std::string::npos) << file;
  }
}

TEST_F(Dashboard, TheOverviewCountsRemindersByStatusAndTheLastHour) {
  create_one("a");
  const long b = create_one("b");
  ASSERT_EQ(post("/v1/reminders/" + std::to_string(b) + "/pause").status, 200);
  const auto r = get("/v1/overview");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["counts"], json::parse(R"({"ACTIVE": 1, "PAUSED": 1})"));
  EXPECT_FALSE(r.body["counts_estimated"].get<bool>());
  EXPECT_EQ(r.body["due_now"], 0);
  EXPECT_EQ(r.body["last_hour"], json::parse(R"({"delivered": 0, "failed": 0})"));
  EXPECT_TRUE(r.body["gauges"].is_array());
  EXPECT_TRUE(r.body["as_of"].is_string());

  const auto bad = get("/v1/overview?status=ACTIVE");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.error_field(), "status");
}

}  // namespace
}  // namespace nudge::test
