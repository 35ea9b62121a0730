#pragma once
// The stream's reminder changes rendered in the API from the raw columns nudge.stream_changes
// returns, into the JSON the REST answers give (nudge.reminder_json, nudge.execution_json):
// rendering each fire with jsonb in the database cost the one change reader 90 us a fire, more
// than a drain of 20,000 fires a second leaves it. Strings and numbers are copied, timestamps
// turned from PostgreSQL's text (ISO) into JSON's form, payload, request and delivery attempts
// (already JSON) spliced in; a schedule_text is sent once for the rows that share it.
// tests/api/stream_test.cpp compares each object with the REST one.

#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nudge::api {

// The fields of one result row, read through one pqxx iterator moved from column to column: a
// pqxx::field made per read copies the result's two shared pointers, and a fire reads about 60
// fields (libpqxx 6 gives no cheaper way to them).
class Cells {
 public:
  explicit Cells(const pqxx::row& row) : at_(row.begin()) {}
  bool null(pqxx::row::size_type column) { return seek(column).is_null(); }
  std::string_view text(pqxx::row::size_type column) {
    const pqxx::field& f = seek(column);
    return {f.c_str(), f.size()};
  }

 private:
  const pqxx::field& seek(pqxx::row::size_type column) {
    at_ += static_cast<pqxx::row::difference_type>(column) -
           static_cast<pqxx::row::difference_type>(column_);
    column_ = column;
    return at_;
  }
  pqxx::const_row_iterator at_;
  pqxx::row::size_type column_ = 0;
};

// The column numbers of one result of nudge.stream_changes, looked up once per result.
struct ReminderColumns {
  explicit ReminderColumns(const pqxx::result& result);
  pqxx::row::size_type change, object_id, r_entity_type, r_entity_id, r_status, r_payload,
      r_request, r_schedule_text, r_schedule_text_as_before, r_next_run_at, r_occurrence_at,
      r_attempt, x_fired_at, x_delivery_attempts;
  std::vector<std::pair<const char*, pqxx::row::size_type>> strings, numbers, times, x_strings,
      x_numbers, x_times;
};

// Appends {"change": ..., "reminder": {...}[, "execution": {...}]} of the change in `row`.
// `shown` is the schedule_text of the rows before: the row repeats it where its
// r_schedule_text_as_before says so, else sets it to its own (a view into the result).
void append_reminder_change(std::string& out, Cells& row, const ReminderColumns& columns,
                            std::string_view& shown);

}  // namespace nudge::api
