#pragma once
// The change log (nudge.changes) as the live stream reads it: positions, the changes after one,
// and each change as the Server-Sent Events message every client gets.
//
// A position is (batch, id, n): the delivery batch (nudge.change_batches: the transactions
// that finished between two snapshots of the log), the row (one per statement) and the object's
// place in it. Batches are made in order by nudge.stream_advance, and a batch is read only once
// committed, so nothing can appear behind a position once read. (batch, 0, 0) is before every
// change of the batch. A message's `id:` is the position in hex, 16, 16 and 8 digits joined by
// '-': fixed width, so the ids of a stream increase as strings.

#include <compare>
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

namespace nudge::api {

struct Position {
  std::uint64_t batch = 0;
  std::int64_t id = 0;
  std::int32_t n = 0;
  auto operator<=>(const Position&) const = default;
};

// "00000000000004d2-0000000000000007-00000001".
std::string event_id(Position p);
// The position an event id names; nullopt when the text is not one this server made.
std::optional<Position> parse_event_id(const std::string& text);

// One change, rendered: its message is in its page's text.
struct Change {
  Position position;
  std::string kind;  // reminder | flag | event | rule: the message's event name
  std::optional<std::int64_t> reminder_id;
  std::optional<std::string> entity_type, entity_id;
  // Where its HTTP chunk begins in the page's text, and where its message
  // ("id: ...\nevent: <kind>\ndata: <json>\n\n") begins and ends; the chunk ends 2 bytes after.
  std::size_t chunk = 0, begin = 0, end = 0;
};

// Changes read, and the position they were read up to.
struct Page {
  std::vector<Change> changes;
  // Every change's message as one HTTP/1.1 chunk, end to end, in order: written to every
  // stream that wants the whole page as it is, without a copy per client.
  std::string text;
  Position end;  // after the last change, or the start of the batch after `through`

  std::string_view message(const Change& c) const {
    return std::string_view(text).substr(c.begin, c.end - c.begin);
  }
};

// Up to `limit` changes after `after`, of the batches up to `through`, in order (statement
// "stream_changes"); fewer than `limit` when no more of them remain.
Page read_changes(pqxx::transaction_base& tx, Position after, std::int64_t through, int limit);
// The same read in parts, for a reader that has the next page read while it renders one (a
// pqxx::pipeline): the statement as text, with its values; where the page `rows` ends; and its
// changes (one result row each).
std::string changes_query(Position after, std::int64_t through, int limit);
Position page_end(const pqxx::result& rows, std::int64_t through, int limit);
Page render_changes(const pqxx::result& rows, std::int64_t through, int limit);
// Makes the next batch of the transactions finished since the last one, if any; the last batch
// (statement "stream_advance").
std::int64_t advance_batches(pqxx::transaction_base& tx);
// The last batch made (statement "stream_last").
std::int64_t last_batch(pqxx::transaction_base& tx);
// The position before every change of the batch after `batch`: after all of it.
Position after_batch(std::int64_t batch);
// A position after every change pruned from the log (statement "stream_pruned"); the log's
// start when none was.
Position pruned_through(pqxx::transaction_base& tx);

// A message that is not a change: an event without an id, so that a client's Last-Event-ID
// stays that of the last change it got.
std::string notice_message(const std::string& event, const std::string& json);

}  // namespace nudge::api
