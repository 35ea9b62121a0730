#pragma once
// nudge-api token create|list|revoke: the commands that manage API tokens, with the server's
// settings (--config FILE, NUDGE_* variables; the database is migrated first, as at the server's
// start). Exit 0 on success; 1 when the database refuses (a taken name, no such token) or cannot
// be reached; 2 for bad arguments or settings, with the usage on stderr.

namespace nudge::api {

// `args` are the words after "token".
int token_command(int argc, char** args);

}  // namespace nudge::api
