#include "stream_render.hpp"

#include <string_view>

#include "json_text.hpp"

namespace nudge::api {
namespace {

// "2026-12-02 05:34:26.5+00" (DateStyle ISO) as JSON gives it: "2026-12-02T05:34:26.5+00:00".
void append_time(std::string& out, std::string_view text) {
  const std::size_t sign = text.find_first_of("+-", 19);
  if (text.size() < 22 || text[10] != ' ' || sign == std::string_view::npos) {
    append_json_string(out, text);  // infinity, or a year past 9999: as the text says
    return;
  }
  out += '"';
  out += text.substr(0, 10);
  out += 'T';
  out += text.substr(11);
  if (text.size() - sign == 3) out += ":00";  // JSON always gives the offset's minutes
  out += '"';
}

// An object being written: fields are added unless their column is NULL (jsonb_strip_nulls).
class Object {
 public:
  explicit Object(std::string& out) : out_(out) { out_ += '{'; }
  ~Object() { out_ += '}'; }
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;

  // `name` is one of ours: nothing in it needs escaping.
  std::string& key(std::string_view name) {
    out_ += first_ ? std::string_view("\"") : std::string_view(",\"");
    first_ = false;
    out_ += name;
    out_ += std::string_view("\":");
    return out_;
  }
  void string(const char* name, Cells& row, pqxx::row::size_type column) {
    if (!row.null(column)) append_json_string(key(name), row.text(column));
  }
  void raw(const char* name, Cells& row, pqxx::row::size_type column) {
    if (!row.null(column)) key(name) += row.text(column);
  }
  void time(const char* name, Cells& row, pqxx::row::size_type column) {
    if (!row.null(column)) append_time(key(name), row.text(column));
  }

 private:
  std::string& out_;
  bool first_ = true;
};

void append_reminder(std::string& out, Cells& row, const ReminderColumns& c,
                     std::string_view& shown) {
  Object o(out);
  // The payload as stored, nulls inside it too.
  o.raw("payload", row, c.r_payload);
  for (const auto& [name, i] : c.strings) o.string(name, row, i);
  for (const auto& [name, i] : c.numbers) o.raw(name, row, i);
  for (const auto& [name, i] : c.times) o.time(name, row, i);
  // What is due is shown only while the reminder can still fire.
  const std::string_view status = row.text(c.r_status);
  if (status == "ACTIVE" || status == "PAUSED") {
    o.time("next_run_at", row, c.r_next_run_at);
    o.time("retrying_occurrence", row, c.r_occurrence_at);
    if (!row.null(c.r_occurrence_at)) o.raw("attempts", row, c.r_attempt);
  }
  o.raw("request", row, c.r_request);
  std::string& text = o.key("schedule_text");
  if (row.text(c.r_schedule_text_as_before) != "t") {
    // NULL (a reminder without one) is a view of nothing, shown as null and repeated as such.
    shown = row.null(c.r_schedule_text) ? std::string_view() : row.text(c.r_schedule_text);
  }
  if (shown.data() == nullptr) {
    text += "null";
  } else {
    append_json_string(text, shown);
  }
}

void append_execution(std::string& out, Cells& row, const ReminderColumns& c) {
  Object o(out);
  o.raw("reminder_id", row, c.object_id);
  for (const auto& [name, i] : c.x_strings) o.string(name, row, i);
  for (const auto& [name, i] : c.x_numbers) o.raw(name, row, i);
  for (const auto& [name, i] : c.x_times) o.time(name, row, i);
  if (row.null(c.x_delivery_attempts)) return;
  // The attempts' JSON objects, joined by commas in attempt order.
  std::string& list = o.key("delivery_attempts");
  list += '[';
  list += row.text(c.x_delivery_attempts);
  list += ']';
}

}  // namespace

ReminderColumns::ReminderColumns(const pqxx::result& result) {
  const auto at = [&result](const char* column) { return result.column_number(column); };
  change = at("change");
  object_id = at("object_id");
  r_entity_type = at("r_entity_type");
  r_entity_id = at("r_entity_id");
  r_status = at("r_status");
  r_payload = at("r_payload");
  r_request = at("r_request");
  r_schedule_text = at("r_schedule_text");
  r_schedule_text_as_before = at("r_schedule_text_as_before");
  r_next_run_at = at("r_next_run_at");
  r_occurrence_at = at("r_occurrence_at");
  r_attempt = at("r_attempt");
  x_fired_at = at("x_fired_at");
  x_delivery_attempts = at("x_delivery_attempts");
  // Each shown as nudge.reminder_json and nudge.execution_json show it, under its own name.
  for (const char* name :
       {"entity_type", "entity_id", "event_type", "channel", "target", "schedule_type", "cron",
        "timezone", "misfire_policy", "stop_condition_type", "stop_condition_value", "status",
        "completed_reason", "last_error"})
    strings.emplace_back(name, at(("r_" + std::string(name)).c_str()));
  // The reminder's id is the change's object_id.
  numbers.emplace_back("id", object_id);
  for (const char* name :
       {"interval_seconds", "max_attempts", "max_fires", "fire_count", "rule_id", "event_id"})
    numbers.emplace_back(name, at(("r_" + std::string(name)).c_str()));
  for (const char* name : {"ends_at", "created_at", "updated_at", "finished_at"})
    times.emplace_back(name, at(("r_" + std::string(name)).c_str()));
  for (const char* name : {"outcome", "worker", "error"})
    x_strings.emplace_back(name, at(("x_" + std::string(name)).c_str()));
  x_numbers.emplace_back("attempts", at("x_attempts"));
  for (const char* name : {"scheduled_for", "fired_at"})
    x_times.emplace_back(name, at(("x_" + std::string(name)).c_str()));
}

void append_reminder_change(std::string& out, Cells& row, const ReminderColumns& c,
                            std::string_view& shown) {
  out += "{\"change\":";
  append_json_string(out, row.text(c.change));
  out += ",\"reminder\":";
  if (row.null(c.r_status)) {
    // Pruned since: only its id is left to say.
    out += "{\"id\":";
    out += row.text(c.object_id);
    out += '}';
  } else {
    append_reminder(out, row, c, shown);
  }
  if (!row.null(c.x_fired_at)) {
    out += ",\"execution\":";
    append_execution(out, row, c);
  }
  out += '}';
}

}  // namespace nudge::api
