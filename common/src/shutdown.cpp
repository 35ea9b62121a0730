#include "nudge/shutdown.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace nudge {

namespace {

std::atomic<bool> g_requested{false};
int g_pipe[2] = {-1, -1};
std::once_flag g_once;

void on_signal(int) {
  const int saved = errno;
  g_requested = true;
  const char byte = 1;
  [[maybe_unused]] const auto n = ::write(g_pipe[1], &byte, 1);
  errno = saved;
}

void make_pipe() {
  if (::pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) g_pipe[0] = g_pipe[1] = -1;
}

}  // namespace

void install_shutdown_handlers() {
  std::call_once(g_once, make_pipe);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

bool shutdown_requested() {
  return g_requested.load();
}

int shutdown_fd() {
  std::call_once(g_once, make_pipe);
  return g_pipe[0];
}

void request_shutdown() {
  std::call_once(g_once, make_pipe);
  on_signal(0);
}

}  // namespace nudge
