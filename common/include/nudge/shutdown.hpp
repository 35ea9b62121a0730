#pragma once
// SIGTERM/SIGINT become a flag plus a readable file descriptor, so a worker sleeping in poll()
// wakes at once and can stop cleanly.

namespace nudge {

// Installs the handlers (idempotent).
void install_shutdown_handlers();
bool shutdown_requested();
// Becomes readable once shutdown is requested.
int shutdown_fd();
// Requests shutdown from inside the program (tests, fatal errors).
void request_shutdown();

}  // namespace nudge
