#include "stream_changes.hpp"

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "stream_render.hpp"

namespace nudge::api {
namespace {

// A column the database guarantees to hold an integer.
template <typename Integer>
Integer integer(std::string_view text) {
  Integer value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// The first three columns: pos, id, n.
Position position_of(Cells& row) {
  return {integer<std::uint64_t>(row.text(0)), integer<std::int64_t>(row.text(1)),
          integer<std::int32_t>(row.text(2))};
}

std::optional<std::string> optional_text(Cells& row, pqxx::row::size_type column) {
  if (row.null(column)) return std::nullopt;
  return std::string(row.text(column));
}

bool hex(const std::string& text, std::size_t from, std::size_t digits, std::uint64_t& out) {
  out = 0;
  for (std::size_t i = from; i < from + digits; ++i) {
    const char c = text[i];
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return false;
    }
    out = out << 4 | static_cast<std::uint64_t>(digit);
  }
  return true;
}

}  // namespace

std::string event_id(Position p) {
  // By hand, not snprintf: a page of the live stream writes 1,000 of them.
  std::string text(42, '-');
  const auto put = [&text](std::size_t at, std::size_t digits, std::uint64_t value) {
    for (std::size_t i = at + digits; i-- > at; value >>= 4)
      text[i] = "0123456789abcdef"[value & 15];
  };
  put(0, 16, p.batch);
  put(17, 16, static_cast<std::uint64_t>(p.id));
  put(34, 8, static_cast<std::uint32_t>(p.n));
  return text;
}

std::optional<Position> parse_event_id(const std::string& text) {
  std::uint64_t batch = 0, id = 0, n = 0;
  if (text.size() != 42 || text[16] != '-' || text[33] != '-' || !hex(text, 0, 16, batch) ||
      !hex(text, 17, 16, id) || !hex(text, 34, 8, n) ||
      id > static_cast<std::uint64_t>(INT64_MAX) || n > static_cast<std::uint64_t>(INT32_MAX))
    return std::nullopt;
  return Position{batch, static_cast<std::int64_t>(id), static_cast<std::int32_t>(n)};
}

Page render_changes(const pqxx::result& rows, std::int64_t through, int limit) {
  Page page;
  page.changes.reserve(rows.size());
  const ReminderColumns columns(rows);
  const auto kind = rows.column_number("kind");
  const auto entity_type = rows.column_number("entity_type");
  const auto entity_id = rows.column_number("entity_id");
  const auto data = rows.column_number("data");
  std::string message;     // reused: each message is copied once, behind its chunk's size
  std::string_view shown;  // the schedule_text the next row may repeat
  for (pqxx::result::size_type i = 0; i < rows.size(); ++i) {
    Cells row(rows[i]);
    Change c;
    c.position = position_of(row);
    c.kind = row.text(kind);
    message.clear();
    message += "id: ";
    message += event_id(c.position);
    message += "\nevent: ";
    message += c.kind;
    message += "\ndata: ";
    if (c.kind == "reminder") {
      c.reminder_id = integer<std::int64_t>(row.text(columns.object_id));
      // A reminder's entity is its own (none once it is gone).
      if (!row.null(columns.r_status)) {
        c.entity_type = std::string(row.text(columns.r_entity_type));
        c.entity_id = std::string(row.text(columns.r_entity_id));
      }
      append_reminder_change(message, row, columns, shown);
    } else {
      c.entity_type = optional_text(row, entity_type);
      c.entity_id = optional_text(row, entity_id);
      message += row.text(data);
    }
    message += "\n\n";
    char size[20];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", message.size());
    c.chunk = page.text.size();
    page.text.append(size, static_cast<std::size_t>(n));
    c.begin = page.text.size();
    page.text += message;
    c.end = page.text.size();
    page.text += "\r\n";
    page.changes.push_back(std::move(c));
  }
  page.end = page.changes.size() < static_cast<std::size_t>(limit) ? after_batch(through)
                                                                   : page.changes.back().position;
  return page;
}

Page read_changes(pqxx::transaction_base& tx, Position after, std::int64_t through, int limit) {
  return render_changes(tx.exec_prepared("stream_changes", static_cast<std::int64_t>(after.batch),
                                         after.id, after.n, through, limit),
                        through, limit);
}

std::string changes_query(Position after, std::int64_t through, int limit) {
  char text[200];
  std::snprintf(text, sizeof text,
                "SELECT * FROM nudge.stream_changes(%lld::bigint, %lld::bigint, %d::integer, "
                "%lld::bigint, %d::integer)",
                static_cast<long long>(after.batch), static_cast<long long>(after.id), after.n,
                static_cast<long long>(through), limit);
  return text;
}

Position page_end(const pqxx::result& rows, std::int64_t through, int limit) {
  // One row per change.
  if (rows.size() < static_cast<pqxx::result::size_type>(limit)) return after_batch(through);
  Cells row(rows[rows.size() - 1]);
  return position_of(row);
}

std::int64_t advance_batches(pqxx::transaction_base& tx) {
  return tx.exec_prepared1("stream_advance")[0].as<std::int64_t>();
}

std::int64_t last_batch(pqxx::transaction_base& tx) {
  return tx.exec_prepared1("stream_last")[0].as<std::int64_t>();
}

Position after_batch(std::int64_t batch) {
  return {static_cast<std::uint64_t>(batch) + 1, 0, 0};
}

Position pruned_through(pqxx::transaction_base& tx) {
  // Whole batches are pruned: every change of the last one went. The next batch's start, not
  // (batch, INT64_MAX, INT32_MAX): a page read from there overflowed its limit + n in SQL.
  // Batch 0, where the log starts, holds no change: with only it pruned (or none, which reads
  // the same) nothing is lost, and a client starting from 0 must not be told it was.
  const auto batch = tx.exec_prepared1("stream_pruned")[0].as<std::int64_t>();
  return batch == 0 ? Position{} : after_batch(batch);
}

std::string notice_message(const std::string& event, const std::string& json) {
  return "event: " + event + "\ndata: " + json + "\n\n";
}

}  // namespace nudge::api
