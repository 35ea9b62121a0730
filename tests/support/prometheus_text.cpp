#include "support/prometheus_text.hpp"

#include <httplib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace nudge::test {

Scraped scrape(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  const auto r = client.Get(path.c_str());
  if (!r) return {};
  return {r->status, r->body};
}

std::optional<double> sample_value(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

std::string prometheus_tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const auto candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

std::string promtool_problems(const std::string& text) {
  const std::string promtool = prometheus_tool("promtool");
  if (promtool.empty())
    return "promtool is not installed: install Debian's prometheus package (scripts/setup.sh "
           "does)";
  static std::atomic<int> checks{0};
  const auto file =
      std::filesystem::temp_directory_path() /
      ("nudge-promtool-" + std::to_string(::getpid()) + "-" + std::to_string(++checks) + ".prom");
  std::ofstream(file) << text;
  const std::string command = promtool + " check metrics < " + file.string() + " 2>&1";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "cannot run " + command;
  char buf[4096];
  while (const std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = ::pclose(pipe);
  std::filesystem::remove(file);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return "promtool check metrics failed (" + std::to_string(status) + "):\n" + output;
}

}  // namespace nudge::test
