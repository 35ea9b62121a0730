#include "stream_changes.hpp"

#include <cstdint>
#include <cstdio>

namespace nudge::api {
namespace {

Position position_of(const pqxx::row& row) {
  return {row[0].as<std::uint64_t>(), row[1].as<std::int64_t>(), row[2].as<std::int32_t>()};
}

std::optional<std::string> optional_text(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return std::string(f.c_str());
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
  char text[43];
  std::snprintf(text, sizeof text, "%016llx-%016llx-%08x", static_cast<unsigned long long>(p.xid),
                static_cast<unsigned long long>(p.id), static_cast<unsigned>(p.n));
  return text;
}

std::optional<Position> parse_event_id(const std::string& text) {
  std::uint64_t xid = 0, id = 0, n = 0;
  if (text.size() != 42 || text[16] != '-' || text[33] != '-' || !hex(text, 0, 16, xid) ||
      !hex(text, 17, 16, id) || !hex(text, 34, 8, n) ||
      id > static_cast<std::uint64_t>(INT64_MAX) || n > static_cast<std::uint64_t>(INT32_MAX))
    return std::nullopt;
  return Position{xid, static_cast<std::int64_t>(id), static_cast<std::int32_t>(n)};
}

std::vector<Change> read_changes(pqxx::transaction_base& tx, Position after, int limit) {
  const pqxx::result rows =
      tx.exec_prepared("stream_changes", std::to_string(after.xid), after.id, after.n, limit);
  std::vector<Change> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    Change c;
    c.position = position_of(row);
    c.kind = row[3].c_str();
    if (!row[4].is_null()) c.reminder_id = row[4].as<std::int64_t>();
    c.entity_type = optional_text(row[5]);
    c.entity_id = optional_text(row[6]);
    c.message = "id: " + event_id(c.position) + "\nevent: " + c.kind + "\ndata: ";
    c.message += row[7].c_str();
    c.message += "\n\n";
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<Position> last_change_after(pqxx::transaction_base& tx, Position after) {
  const pqxx::result rows = tx.exec_prepared("stream_end", std::to_string(after.xid), after.id);
  if (rows.empty()) return std::nullopt;
  return position_of(rows[0]);
}

Position stream_start(pqxx::transaction_base& tx) {
  return position_of(tx.exec_prepared1("stream_start"));
}

Position pruned_through(pqxx::transaction_base& tx) {
  const pqxx::row row = tx.exec_prepared1("stream_pruned");
  // Whole rows are pruned: every place in the last one went.
  return {row[0].as<std::uint64_t>(), row[1].as<std::int64_t>(), INT32_MAX};
}

std::string notice_message(const std::string& event, const std::string& json) {
  return "event: " + event + "\ndata: " + json + "\n\n";
}

}  // namespace nudge::api
