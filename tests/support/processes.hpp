#pragma once
// Real child processes for tests: start a program, signal it, wait for it with a deadline.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nudge::test {

class ChildProcess {
 public:
  // Starts argv[0] (a path, or a name looked up in PATH) with the current environment plus
  // `env`; stdout goes to `log_path` and stderr to `log_path`.err (appended) so a failing test
  // can show them.
  ChildProcess(std::vector<std::string> argv, const std::map<std::string, std::string>& env,
               std::string log_path);
  ~ChildProcess();  // SIGKILLs and reaps the child if it still runs
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  void signal(int sig) const;
  bool running();
  // Waits for exit; returns the exit code (128+signal if killed), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  std::string log() const;  // what the child printed so far: stdout, then stderr
  void remove_logs() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// How a program run to its end by run_program ended, and what it printed.
struct Finished {
  std::optional<int> exit_code;  // nullopt: still running at the deadline (then killed)
  std::string out;               // stdout
  std::string err;               // stderr
};

// Runs argv to its end, at most `timeout`, with the current environment plus `env`.
Finished run_program(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env,
                     std::chrono::milliseconds timeout);

// The SSRF guard refuses loopback webhook targets by default; the programs under test deliver to
// receivers on loopback, so their settings open it: {kAllowPrivate, kLoopbackNetworks}.
inline constexpr char kAllowPrivate[] = "NUDGE_WEBHOOK_ALLOW_PRIVATE";
inline constexpr char kLoopbackNetworks[] = "127.0.0.0/8,::1/128";

// Runs `nudge-api token ARGS...` as an operator would, to its end: against the database at `url`
// (none: the settings say), with `settings` (NUDGE_* variables) in its environment.
Finished token_command(const std::string& url, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& settings = {});

// A free TCP port on loopback, as the kernel hands one out.
int free_tcp_port();

// The path of one of Nudge's programs under test ("nudge-worker", "nudge-api"): from
// $NUDGE_TEST_BIN_DIR when set (scripts/test.sh points the Release-built suites at the sanitizer
// build's programs that way), else from this build.
std::string program(const std::string& name);

// What `<program> --version` must print, without the newline: the program, CMake's project
// version and, when the source tree is a git checkout, its HEAD ("nudge-api 0.1.0 (abc1234)").
std::string expected_version_line(const std::string& program);

// The command line of the nudge-worker under test, optionally with --config.
std::vector<std::string> worker_command(const std::string& config_file = "");

}  // namespace nudge::test
