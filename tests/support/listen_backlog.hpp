#pragma once

#include <httplib.h>
#include <sys/socket.h>

#include <string>

namespace nudge::test {

// Debian's cpp-httplib is a compiled library that listens with a backlog of 5 (its
// CPPHTTPLIB_LISTEN_BACKLOG is fixed when the library is built): a burst of deliveries (64 in
// flight) overflows the accept queue, and a dropped SYN is retried after 1, 3 and 7 s, past a
// delivery timeout. Binds as bind_to_any_port does, then listens again with a real backlog, as
// nudge-api does. Returns the port, or -1.
// With `port` 0, any free port.
inline int bind_to_port_with_backlog(httplib::Server& server, const std::string& host,
                                     int port = 0) {
  int listen_fd = -1;
  server.set_socket_options([&listen_fd](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd = fd;
  });
  const int bound = port == 0                         ? server.bind_to_any_port(host)
                    : server.bind_to_port(host, port) ? port
                                                      : -1;
  server.set_socket_options([](int) {});  // the lambda above refers to this frame
  if (bound <= 0 || ::listen(listen_fd, SOMAXCONN) != 0) return -1;
  return bound;
}

}  // namespace nudge::test
