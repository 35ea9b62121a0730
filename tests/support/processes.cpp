#include "support/processes.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace nudge::test {

ChildProcess::ChildProcess(std::vector<std::string> argv,
                           const std::map<std::string, std::string>& env, std::string log_path)
    : log_path_(std::move(log_path)) {
  // Separate files: a buffered stdout flush and an unbuffered stderr line in one file can
  // interleave mid-line and break a fire line apart.
  const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int err_fd = ::open((log_path_ + ".err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0 || err_fd < 0) throw std::runtime_error("cannot open " + log_path_);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd);
  ::close(err_fd);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

void ChildProcess::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

bool ChildProcess::running() {
  if (status_) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

std::string ChildProcess::log() const {
  // Not `stream << rdbuf()`: an empty first file sets failbit and the second is then skipped.
  std::string out;
  for (const auto& path : {log_path_, log_path_ + ".err"}) {
    std::ifstream in(path);
    out.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

void ChildProcess::remove_logs() const {
  std::remove(log_path_.c_str());
  std::remove((log_path_ + ".err").c_str());
}

Finished run_program(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env,
                     std::chrono::milliseconds timeout) {
  static std::atomic<int> runs{0};
  const auto log_path = std::filesystem::temp_directory_path() /
                        ("nudge-run-" + std::to_string(::getpid()) + "-" + std::to_string(++runs));
  Finished finished;
  {
    ChildProcess child(argv, env, log_path.string());
    finished.exit_code = child.wait(timeout);
  }  // killed here if it overran
  for (auto [path, text] : {std::pair{log_path.string(), &finished.out},
                            std::pair{log_path.string() + ".err", &finished.err}}) {
    std::ifstream in(path);
    text->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    std::filesystem::remove(path);
  }
  return finished;
}

Finished token_command(const std::string& url, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& settings) {
  std::vector<std::string> argv{program("nudge-api"), "token"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> env = settings;
  if (!url.empty()) env["NUDGE_DATABASE_URL"] = url;
  return run_program(argv, env, std::chrono::seconds(60));
}

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string program(const std::string& name) {
  const char* dir = std::getenv("NUDGE_TEST_BIN_DIR");
  return (dir != nullptr && *dir != '\0' ? std::string(dir) : std::string(NUDGE_BIN_DIR)) + "/" +
         name;
}

std::string expected_version_line(const std::string& program) {
  std::string line = program + " " + NUDGE_VERSION;
  const auto head = run_program({"git", "-C", NUDGE_SOURCE_DIR, "rev-parse", "--short=7", "HEAD"},
                                {}, std::chrono::seconds(30));
  if (head.exit_code == 0 && !head.out.empty()) {
    line += " (" + head.out.substr(0, head.out.find('\n')) + ")";
  }
  return line;
}

std::vector<std::string> worker_command(const std::string& config_file) {
  std::vector<std::string> argv{program("nudge-worker")};
  if (!config_file.empty()) {
    argv.push_back("--config");
    argv.push_back(config_file);
  }
  return argv;
}

}  // namespace nudge::test
