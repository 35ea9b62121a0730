#pragma once
// The change log (nudge.changes) as the live stream reads it: positions, the changes after one,
// and each change as the Server-Sent Events message every client gets.
//
// A position is (xid, id, n): the writing transaction, the row (one per statement) and the
// object's place in it. The log is read in that order, and only below the reader's snapshot
// xmin, so nothing can commit behind a position once read. A message's `id:` is the position
// in hex, 16, 16 and 8 digits joined by '-': fixed width, so the ids of a stream increase as
// strings.

#include <compare>
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace nudge::api {

struct Position {
  std::uint64_t xid = 0;
  std::int64_t id = 0;
  std::int32_t n = 0;
  auto operator<=>(const Position&) const = default;
};

// "00000000000004d2-0000000000000007-00000001".
std::string event_id(Position p);
// The position an event id names; nullopt when the text is not one this server made.
std::optional<Position> parse_event_id(const std::string& text);

// One change, rendered.
struct Change {
  Position position;
  std::string kind;  // reminder | flag | event | rule: the message's event name
  std::optional<std::int64_t> reminder_id;
  std::optional<std::string> entity_type, entity_id;
  std::string message;  // "id: ...\nevent: <kind>\ndata: <json>\n\n"
};

// Up to `limit` finished changes after `after`, oldest first (statement "stream_changes").
std::vector<Change> read_changes(pqxx::transaction_base& tx, Position after, int limit);
// The last finished change after `after`, if any (statement "stream_end").
std::optional<Position> last_change_after(pqxx::transaction_base& tx, Position after);
// Where a reader starting now begins (statement "stream_start").
Position stream_start(pqxx::transaction_base& tx);
// A position after every change of the rows pruned from the log (statement "stream_pruned").
Position pruned_through(pqxx::transaction_base& tx);

// A message that is not a change: an event without an id, so that a client's Last-Event-ID
// stays that of the last change it got.
std::string notice_message(const std::string& event, const std::string& json);

}  // namespace nudge::api
