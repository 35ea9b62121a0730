// GET /metrics of nudge-api: requests counted by method, route template and status (never by
// the path asked for), the time routes take, the pool and the connections, in a text promtool
// accepts.

#include "api/api_fixture.hpp"
#include "support/prometheus_text.hpp"

namespace nudge::test {
namespace {

class ApiMetrics : public ApiTest {
 protected:
  std::string scrape() {
    const auto r = client_->Get("/metrics");
    if (!r) {
      ADD_FAILURE() << "no answer to GET /metrics";
      return "";
    }
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    return r->body;
  }
  // The value of `series` in `text`, 0 when it is not there (a series appears on first use).
  static double of(const std::string& text, const std::string& series) {
    return sample_value(text, series).value_or(0);
  }
  static std::string requests(const std::string& method, const std::string& route, int status) {
    return "nudge_api_requests_total{method=\"" + method + "\",route=\"" + route + "\",status=\"" +
           std::to_string(status) + "\"}";
  }
};

TEST_F(ApiMetrics, RequestsAreCountedByRouteTemplateAndStatus) {
  const std::string before = scrape();
  const long id = create_one("m1");
  ASSERT_EQ(get("/v1/reminders/" + std::to_string(id)).status, 200);
  ASSERT_EQ(get("/v1/reminders/" + std::to_string(id + 1000)).status, 404);
  ASSERT_EQ(get("/v1/reminders/" + std::to_string(id + 2000)).status, 404);
  ASSERT_EQ(post("/v1/reminders", R"({"entity_type": 5})").status, 400);
  ASSERT_EQ(send("DELETE", "/v1/reminders").status, 405);
  ASSERT_EQ(get("/no/such/route").status, 404);
  ASSERT_EQ(client_->Get("/ui/app.js")->status, 200);
  const std::string after = scrape();

  const auto moved = [&](const std::string& series) {
    return of(after, series) - of(before, series);
  };
  EXPECT_EQ(moved(requests("POST", "/v1/reminders", 201)), 1);
  EXPECT_EQ(moved(requests("POST", "/v1/reminders", 400)), 1);
  EXPECT_EQ(moved(requests("GET", "/v1/reminders/{id}", 200)), 1);
  EXPECT_EQ(moved(requests("GET", "/v1/reminders/{id}", 404)), 2);
  EXPECT_EQ(moved(requests("DELETE", "/v1/reminders", 405)), 1);
  EXPECT_EQ(moved(requests("GET", "other", 404)), 1);
  EXPECT_EQ(moved(requests("GET", "/metrics", 200)), 1);    // the first scrape, counted after it
  EXPECT_EQ(moved(requests("GET", "/ui/{file}", 200)), 1);  // a template, never a regex
  EXPECT_EQ(after.find("route=\"/ui/("), std::string::npos);
  // No series is labelled with a path that was asked for.
  EXPECT_EQ(after.find("/v1/reminders/" + std::to_string(id)), std::string::npos);
  EXPECT_EQ(after.find("/no/such/route"), std::string::npos);

  // Each timed request is in its route's histogram; the 405s of absent methods are not timed.
  EXPECT_EQ(moved("nudge_api_request_duration_seconds_count{method=\"POST\",route=\"/v1/"
                  "reminders\"}"),
            2);
  EXPECT_EQ(moved("nudge_api_request_duration_seconds_count{method=\"GET\",route=\"/v1/"
                  "reminders/{id}\"}"),
            3);
  EXPECT_EQ(after.find("nudge_api_request_duration_seconds_count{method=\"DELETE\""),
            std::string::npos);
  EXPECT_GT(moved("nudge_api_request_duration_seconds_sum{method=\"POST\",route=\"/v1/"
                  "reminders\"}"),
            0);
}

TEST_F(ApiMetrics, ABodyTooLargeIsCountedWithoutARoute) {
  const std::string before = scrape();
  // Over the fixture's 256 KiB limit: refused as it is read, before any route takes it.
  ASSERT_EQ(post("/v1/reminders", std::string(300000, ' ')).status, 413);
  const std::string after = scrape();
  EXPECT_EQ(of(after, requests("POST", "other", 413)) - of(before, requests("POST", "other", 413)),
            1)
      << after;
}

TEST_F(ApiMetrics, ThePoolAndTheConnectionsAreShown) {
  const std::string text = scrape();
  EXPECT_EQ(sample_value(text, "nudge_api_database_connections_limit"), 16);
  EXPECT_EQ(sample_value(text, "nudge_api_database_connections_in_use"), 0);
  EXPECT_GE(sample_value(text, "nudge_api_connections_open").value_or(0), 1);  // this client
  EXPECT_EQ(sample_value(text, "nudge_api_connections_limit"), 10000);
  EXPECT_EQ(sample_value(text, "nudge_api_connections_refused_total"), 0);
  EXPECT_GT(sample_value(text, "process_resident_memory_bytes").value_or(0), 1e6);
}

// The breaker and backlog gauges, computed by the database, are on the API's port too: a team
// scraping only it, the one that is on by default, saw none (explore23a #6).
TEST_F(ApiMetrics, TheDatabasesGaugesAreServedToo) {
  create_one("g1");
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 minute'");
  sql("INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at,"
      " next_probe_at, open_seconds) VALUES ('https://down.example:443', 'open', 5, now(),"
      " now() + interval '60 seconds', 60)");
  const std::string text = scrape();
  EXPECT_EQ(of(text, "nudge_due_reminders"), 1) << text;
  EXPECT_EQ(of(text, "nudge_breaker_hosts{state=\"open\"}"), 1) << text;
  EXPECT_NE(text.find("# TYPE nudge_oldest_due_seconds gauge"), std::string::npos);
  EXPECT_EQ(promtool_problems(text), "");
}

TEST_F(ApiMetrics, TheOutputPassesPromtool) {
  create_one("p1");
  get("/v1/reminders?limit=5");
  get("/nowhere");
  EXPECT_EQ(promtool_problems(scrape()), "");
}

TEST_F(ApiMetrics, AnUnknownQueryParameterIsRefusedNamingIt) {
  const auto r = get("/metrics?format=json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_field(), "format");
}

}  // namespace
}  // namespace nudge::test
