// nudge-connection-load: many keep-alive clients at once, for scripts/bench.sh connections.
// Opens CLIENTS connections to 127.0.0.1:PORT together; each sends GET /health as soon as it is
// connected and then stays connected and idle. When every one has its answer (or 30 s passed), one
// more client sends the same request. Prints one JSON object: the first answers' p50/p99/max in
// ms (from the start of the connect to the whole answer), how many failed, the late client's
// time, and the server's resident memory (VmRSS of --pid) with all the connections open.
// Usage: nudge-connection-load PORT CLIENTS [--pid PID]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kRequest = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
constexpr auto kGiveUp = std::chrono::seconds(30);

struct Client {
  int fd = -1;
  Clock::time_point start;
  bool sent = false;
  bool done = false;
  bool failed = false;
  std::string received;
  double ms = 0;
};

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int yes = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The whole answer is here: the head and as many body bytes as its Content-Length says.
bool complete(const std::string& in) {
  const auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  std::size_t length = 0;
  const auto at = in.find("Content-Length: ");
  if (at != std::string::npos && at < head_end)
    length = std::strtoul(in.c_str() + at + 16, nullptr, 10);
  return in.size() >= head_end + 4 + length;
}

bool answered_ok(const std::string& in) {
  return in.rfind("HTTP/1.1 200", 0) == 0;
}

void handle(Client& c, std::uint32_t events, int ep, std::uint64_t index) {
  if (!c.sent && (events & EPOLLOUT)) {
    c.sent = ::send(c.fd, kRequest, std::char_traits<char>::length(kRequest), MSG_NOSIGNAL) > 0;
    epoll_event e{EPOLLIN, {.u64 = index}};
    ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &e);
  }
  char buf[4096];
  for (;;) {
    const ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
    if (got > 0) {
      c.received.append(buf, static_cast<std::size_t>(got));
      continue;
    }
    if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) c.failed = true;
    break;
  }
  if (complete(c.received) || c.failed) {
    c.done = true;
    c.failed = c.failed || !answered_ok(c.received);
    c.ms = std::chrono::duration<double, std::milli>(Clock::now() - c.start).count();
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
  }
}

// Opens `count` clients as fast as it can, reading answers as they come in between, until
// each client has its answer, failed, or the time is up.
std::vector<Client> run(int port, std::size_t count) {
  std::vector<Client> clients(count);
  const int ep = ::epoll_create1(0);
  std::size_t opened = 0, finished = 0;
  const auto deadline = Clock::now() + kGiveUp;
  std::vector<epoll_event> events(1024);
  while (finished < count && Clock::now() < deadline) {
    if (opened < count) {
      Client& c = clients[opened];
      c.start = Clock::now();
      c.fd = connect_to(port);
      if (c.fd < 0) {
        c.failed = c.done = true;
        ++finished;
      } else {
        // On loopback the connection is usually up at once: ask, as a real client would.
        c.sent = ::send(c.fd, kRequest, std::char_traits<char>::length(kRequest), MSG_NOSIGNAL) > 0;
        epoll_event e{c.sent ? EPOLLIN : EPOLLOUT | EPOLLIN, {.u64 = opened}};
        ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &e);
      }
      ++opened;
    }
    const int n =
        ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), opened < count ? 0 : 100);
    for (int k = 0; k < n; ++k) {
      const epoll_event& e = events[static_cast<std::size_t>(k)];
      Client& c = clients[e.data.u64];
      if (c.done) continue;
      handle(c, e.events, ep, e.data.u64);
      if (c.done) ++finished;
    }
  }
  for (auto& c : clients) {
    if (!c.done) c.failed = true;
  }
  ::close(ep);
  return clients;
}

long rss_kib(const std::string& pid) {
  std::ifstream status("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

double percentile(std::vector<double> sorted, double q) {
  if (sorted.empty()) return -1;
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::min(sorted.size(), std::max<std::size_t>(rank, 1)) - 1];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: nudge-connection-load PORT CLIENTS [--pid PID]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const auto count = static_cast<std::size_t>(std::atol(argv[2]));
  const std::string pid = argc >= 5 && std::string(argv[3]) == "--pid" ? argv[4] : "";
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);

  std::vector<Client> clients = run(port, count);
  std::vector<double> times;
  std::size_t failed = 0;
  for (const auto& c : clients) {
    if (c.failed) {
      ++failed;
    } else {
      times.push_back(c.ms);
    }
  }
  std::sort(times.begin(), times.end());

  std::vector<Client> late = run(port, 1);
  const long rss = pid.empty() ? -1 : rss_kib(pid);

  std::printf(
      "{\"clients\":%zu,\"failed\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
      "\"late_client_ms\":%.2f,\"late_client_failed\":%s,\"api_rss_kib\":%ld}\n",
      count, failed, percentile(times, 0.50), percentile(times, 0.99),
      times.empty() ? -1.0 : times.back(), late[0].ms, late[0].failed ? "true" : "false", rss);
  for (auto& c : clients) ::close(c.fd);
  ::close(late[0].fd);
  return failed == 0 && !late[0].failed ? 0 : 1;
}
