// A real Prometheus (Debian's prometheus package) scrapes a running nudge-api (with auth on,
// sending a token of scope metrics) and nudge-worker, and the fires the worker counted are read
// back through Prometheus' query API.

#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "process/process_fixture.hpp"
#include "support/prometheus_text.hpp"

namespace nudge::test {
namespace {

using nlohmann::json;

class Prometheus : public ProcessTest {
 protected:
  // The result vector of an instant query, or null when Prometheus did not answer.
  json query(int port, const std::string& promql) {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(5);
    const auto r =
        client.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
    if (!r || r->status != 200) return nullptr;
    const json body = json::parse(r->body, nullptr, false);
    return body.is_object() && body.value("status", "") == "success" ? body["data"]["result"]
                                                                     : json();
  }
  // The value of a query answering one sample, or nullopt.
  std::optional<double> single_value(int port, const std::string& promql) {
    const json result = query(port, promql);
    if (!result.is_array() || result.size() != 1) return std::nullopt;
    return std::stod(result[0]["value"][1].get<std::string>());
  }
};

TEST_F(Prometheus, ScrapesTheApiAndAWorkerAndAnswersTheFireCount) {
  const std::string prometheus = prometheus_tool("prometheus");
  ASSERT_FALSE(prometheus.empty())
      << "prometheus is not installed: install Debian's prometheus package (scripts/setup.sh "
         "does)";

  // With auth on (the default), as in production: Prometheus sends a token that may read the
  // metrics and nothing else.
  const Finished made =
      token_command(db_.url(), {"create", "--name", "prometheus", "--scopes", "metrics"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string token = made.out.substr(0, made.out.find('\n'));
  const int api_port = free_tcp_port();
  ChildProcess api(
      {program("nudge-api")},
      {{"NUDGE_DATABASE_URL", db_.url()}, {"NUDGE_API_PORT", std::to_string(api_port)}},
      (dir_ / "api.log").string());
  const int worker_port = free_tcp_port();
  start_worker({{"NUDGE_WORKER_METRICS_PORT", std::to_string(worker_port)}});
  ASSERT_TRUE(wait_until(kSlow,
                         [&] {
                           return scrape(api_port, "/livez").status == 200 &&
                                  scrape(worker_port, "/livez").status == 200;
                         }))
      << api.log() << all_logs();
  EXPECT_EQ(scrape(api_port, "/metrics").status, 401) << "the API's metrics need the token";

  const int port = free_tcp_port();
  const auto config = dir_ / "prometheus.yml";
  std::ofstream(config) << "global:\n"
                           "  scrape_interval: 1s\n"
                           "  scrape_timeout: 1s\n"
                           "scrape_configs:\n"
                           "  - job_name: nudge-worker\n"
                           "    static_configs: [{targets: ['127.0.0.1:"
                        << worker_port
                        << "']}]\n"
                           "  - job_name: nudge-api\n"
                           "    authorization: {credentials: '"
                        << token
                        << "'}\n"
                           "    static_configs: [{targets: ['127.0.0.1:"
                        << api_port << "']}]\n";
  ChildProcess server(
      {prometheus, "--config.file=" + config.string(),
       "--storage.tsdb.path=" + (dir_ / "tsdb").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
      {}, (dir_ / "prometheus.log").string());
  ASSERT_TRUE(wait_until(kSlow, [&] { return scrape(port, "/-/ready").status == 200; }))
      << server.log();

  insert_due(50);
  ASSERT_TRUE(wait_for_executions(50)) << all_logs();

  const std::string fires = R"(nudge_worker_fires_total{channel="log",outcome="delivered"})";
  std::optional<double> seen;
  EXPECT_TRUE(wait_until(
      30s, [&] { return (seen = single_value(port, fires)) == 50.0; }, 200ms))
      << "last answer: " << (seen ? std::to_string(*seen) : "none") << "\n"
      << server.log();
  // Each target is scraped at its own offset in the interval: the API's may not have come yet.
  EXPECT_TRUE(wait_until(10s, [&] { return single_value(port, R"(up{job="nudge-api"})") == 1.0; }))
      << server.log();
  EXPECT_EQ(single_value(port, R"(up{job="nudge-worker"})"), 1.0) << server.log();
  EXPECT_TRUE(wait_until(10s, [&] {
    return single_value(port, R"(sum(nudge_api_requests_total{route="/metrics",status="200"}))")
               .value_or(0) >= 1;
  })) << "the API's own metrics were not scraped";

  server.signal(SIGTERM);
  EXPECT_TRUE(server.wait(10s));
}

}  // namespace
}  // namespace nudge::test
