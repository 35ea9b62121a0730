#pragma once
// Reading Prometheus' text format in tests: one sample's value, and `promtool check metrics`
// (from Debian's prometheus package, which scripts/setup.sh installs).

#include <optional>
#include <string>

namespace nudge::test {

// GET http://127.0.0.1:<port><path>: the status and body (status 0 when nothing answered).
struct Scraped {
  int status = 0;
  std::string body;
};
Scraped scrape(int port, const std::string& path = "/metrics");

// The value of the sample written exactly as `series` (`name{label="value",...}` in the order
// the family declares its labels, or a bare name); nullopt when there is none.
std::optional<double> sample_value(const std::string& text, const std::string& series);

// What `promtool check metrics` says about `text`: empty when it passes; otherwise its output,
// or why it could not run (never silently empty when promtool is missing).
std::string promtool_problems(const std::string& text);

// The path of an executable of Debian's prometheus package ("promtool", "prometheus"), or empty
// when it is not installed.
std::string prometheus_tool(const std::string& name);

}  // namespace nudge::test
