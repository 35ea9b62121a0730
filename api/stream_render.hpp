#pragma once
// The stream's reminder changes rendered in the API from the raw columns nudge.stream_changes
// returns, into the JSON the REST answers give (nudge.reminder_json, nudge.execution_json):
// rendering each fire with jsonb in the database cost the one change reader 90 us a fire, more
// than a drain of 20,000 fires a second leaves it. Strings and numbers are copied, timestamps
// turned from PostgreSQL's text (ISO) into JSON's form, payload, request and delivery attempts
// (already JSON) spliced in. tests/api/stream_test.cpp compares each object with the REST one.

#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace nudge::api {

// The column numbers of one result of nudge.stream_changes, looked up once per result.
struct ReminderColumns {
  explicit ReminderColumns(const pqxx::result& result);
  pqxx::row::size_type change, object_id, r_id, r_status, r_payload, r_request, r_schedule_text,
      r_next_run_at, r_occurrence_at, r_attempt, x_fired_at, x_attempt;
  std::vector<std::pair<const char*, pqxx::row::size_type>> strings, numbers, times, x_strings,
      x_numbers, x_times;
};

// {"change": ..., "reminder": {...}[, "execution": {...}]} of the change in `row`, whose
// execution's delivery attempts are `attempts` (the x_attempt of its rows, in order).
std::string reminder_change_json(const pqxx::row& row, const ReminderColumns& columns,
                                 const std::vector<std::string>& attempts);

}  // namespace nudge::api
