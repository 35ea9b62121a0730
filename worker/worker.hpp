#pragma once
// A worker process: claim loops that fire due reminders, and a maintenance thread that keeps
// long deliveries' leases alive and prunes history. Stateless: everything it knows is in the
// database or in the batch it holds right now.

#include <string>

#include "nudge/config.hpp"

namespace nudge {

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run_worker(const Config& config, const std::string& worker_id);

}  // namespace nudge
