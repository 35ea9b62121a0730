#include "nudge/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace nudge::metrics {
namespace {

struct ProcStat {
  double cpu_seconds = 0;
  double start_time_seconds = 0;
  double virtual_bytes = 0;
  double resident_bytes = 0;
};

// Seconds since the epoch at which the machine booted (btime in /proc/stat).
double boot_time() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("btime ")) return std::stod(line.substr(6));
  }
  return 0;
}

std::optional<ProcStat> read_stat() {
  std::ifstream in("/proc/self/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces: fields count from after it.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields),
                             std::istream_iterator<std::string>()};
  // f[0] is field 3 (state): field n is f[n - 3].
  if (f.size() < 22) return std::nullopt;
  static const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  static const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  static const double booted = boot_time();
  ProcStat s;
  s.cpu_seconds = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
  s.start_time_seconds = booted + std::stod(f[22 - 3]) / ticks;
  s.virtual_bytes = std::stod(f[23 - 3]);
  s.resident_bytes = std::stod(f[24 - 3]) * page;
  return s;
}

double open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the directory's own descriptor
}

double max_fds() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 0;
  return static_cast<double>(limit.rlim_cur);
}

}  // namespace

void add_process_metrics(Registry& registry) {
  registry.collector([](TextWriter& out) {
    if (const auto s = read_stat()) {
      out.family("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                 Type::counter);
      out.sample("process_cpu_seconds_total", {}, s->cpu_seconds);
      out.family("process_start_time_seconds",
                 "Start time of the process since the Unix epoch, in seconds.", Type::gauge);
      out.sample("process_start_time_seconds", {}, s->start_time_seconds);
      out.family("process_virtual_memory_bytes", "Virtual memory size, in bytes.", Type::gauge);
      out.sample("process_virtual_memory_bytes", {}, s->virtual_bytes);
      out.family("process_resident_memory_bytes", "Resident memory size, in bytes.", Type::gauge);
      out.sample("process_resident_memory_bytes", {}, s->resident_bytes);
    }
    out.family("process_open_fds", "Open file descriptors.", Type::gauge);
    out.sample("process_open_fds", {}, open_fds());
    out.family("process_max_fds", "The limit of open file descriptors.", Type::gauge);
    out.sample("process_max_fds", {}, max_fds());
  });
}

}  // namespace nudge::metrics
