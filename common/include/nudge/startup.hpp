#pragma once
// What both programs do before serving: bring the schema up to date, waiting a while for a
// database that is still starting (run.sh, a container, a failover).

#include <chrono>
#include <cstddef>
#include <string>

#include "nudge/config.hpp"

namespace nudge {

// A name unique to this process start: host, pid and a random suffix ("host:pid:1a2b3c4d").
std::string make_process_id();

// Raises the soft limit of open files to the hard one (the soft default, often 1024, is far
// below what a server holding many connections needs) and returns the soft limit in force.
std::size_t raise_open_file_limit();

// Applies pending migrations, retrying unreachable databases with backoff for `give_up_after`
// (or until shutdown is requested), and logs why it could not. Returns the exit code the program
// should stop with: 0 when it may go on, 2 when the schema is newer than this binary can work
// with (SchemaTooNew), 1 for any other failure.
int migrate_at_startup(const Config& config, const std::string& application_name,
                       std::chrono::seconds give_up_after = std::chrono::seconds(60));

}  // namespace nudge
