#pragma once
// Ending a stopping worker's own statements that wait too long: one that waits for a lock (a
// migration's ACCESS EXCLUSIVE on nudge.reminders, say) would otherwise hold its thread, and so
// the whole stop, until the lock is released.

#include <string>

namespace nudge {

// Cancels the statements running now on every connection whose application_name starts with
// `worker_id` + "/" (each of this worker's loops and its maintenance), from a connection of its
// own to `url`; logs what it cancelled, or why it could not. Never throws.
void cancel_running_statements(const std::string& url, const std::string& worker_id);

}  // namespace nudge
