#include "input.hpp"

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <limits>
#include <set>
#include <string_view>
#include <vector>

#include "errors.hpp"
#include "json_number.hpp"
#include "json_text.hpp"
#include "nudge/secret_placeholders.hpp"
#include "nudge/utf8.hpp"
#include "request_input.hpp"
#include "text_input.hpp"
#include "webhook_target.hpp"

namespace nudge::api {
namespace {

using nlohmann::json;

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

ApiError wrong_type(const std::string& field, const std::string& want, const json& v) {
  return bad_field(field, "invalid_type", std::string("must be ") + want + ", not " + type_name(v));
}

// Reads the fields of one JSON object, remembering which were used so that anything else can
// be rejected as unknown (typos are caught, not ignored). Keys are the callers' literals, looked
// up without a copy: a batch reads 20 fields of each of its 1,000 items.
class Fields {
 public:
  Fields(const json& object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {
    known_.reserve(24);  // a create reads 21
  }

  std::string name(std::string_view key) const { return prefix_ + std::string(key); }

  const json* get(std::string_view key) {
    known_.push_back(key);
    const auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  // A string of 1..max characters; absent or null gives nullopt unless required.
  std::optional<std::string> text(std::string_view key, std::size_t max, bool required) {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) {
      if (required) throw missing(key);
      return std::nullopt;
    }
    if (!v->is_string()) throw wrong_type(name(key), "a string", *v);
    const auto& s = v->get_ref<const std::string&>();
    if (s.empty()) throw bad_field(name(key), "invalid_value", "must not be empty");
    if (s.size() > max && utf8::code_points(s) > max) {
      throw bad_field(name(key), "too_long",
                      "must be at most " + std::to_string(max) + " characters");
    }
    return s;
  }

  // A string that must be one of `allowed` (named in the error in alphabetical order).
  std::optional<std::string> choice(std::string_view key,
                                    std::initializer_list<std::string_view> allowed,
                                    bool required) {
    auto s = text(key, 64, required);
    if (s && std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
      std::vector<std::string_view> sorted(allowed);
      std::sort(sorted.begin(), sorted.end());
      std::string list;
      for (const auto a : sorted) list += (list.empty() ? "" : ", ") + std::string(a);
      throw bad_field(name(key), "invalid_value", "must be one of " + list);
    }
    return s;
  }

  // An integer in [min, max].
  std::optional<int> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_number_integer()) throw wrong_type(name(key), "an integer", *v);
    std::int64_t value = 0;
    if (v->is_number_unsigned()) {
      const auto u = v->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(max))
        throw bad_field(name(key), "invalid_value", range_text(min, max));
      value = static_cast<std::int64_t>(u);
    } else {
      value = v->get<std::int64_t>();
    }
    if (value < min || value > max)
      throw bad_field(name(key), "invalid_value", range_text(min, max));
    return static_cast<int>(value);
  }

  // An RFC 3339 time with an offset.
  std::optional<std::string> time(std::string_view key) {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_string()) throw wrong_type(name(key), "an RFC 3339 time string", *v);
    const auto& s = v->get_ref<const std::string&>();
    if (!is_rfc3339(s)) {
      throw bad_field(name(key), "invalid_value",
                      "must be an RFC 3339 time with an offset within ±15:59, e.g. "
                      "2026-01-31T09:00:00Z");
    }
    return s;
  }

  // true or false.
  std::optional<bool> boolean(std::string_view key) {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_boolean()) throw wrong_type(name(key), "true or false", *v);
    return v->get<bool>();
  }

  // Any JSON object of at most 64 KiB (serialised).
  std::optional<json> object(std::string_view key) {
    const json* v = get(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_object()) throw wrong_type(name(key), "a JSON object", *v);
    // An empty object needs no measuring.
    if (!v->empty() && v->dump().size() > 65536)
      throw bad_field(name(key), "too_long", "must be at most 64 KiB");
    return *v;
  }

  // Throws for the first field nobody asked for.
  void reject_unknown() const {
    for (const auto& [key, value] : object_.items()) {
      if (std::find(known_.begin(), known_.end(), key) == known_.end())
        throw bad_field(name(key), "unknown_field", "is not a known field");
    }
  }

  // A required field that is absent; a key given instead that is one or two letters from it
  // ("adress", "entity_typ") is what the caller got wrong, and is named.
  ApiError missing(std::string_view key) const {
    for (const auto& [given, value] : object_.items()) {
      if (given != key && given.size() >= 3 && edit_distance(given, key) <= 2)
        return bad_field(name(given), "unknown_field",
                         "is not a known field: " + name(key) + " is required (misspelt?)");
    }
    return bad_field(name(key), "missing_field", "is required");
  }

 private:
  // Levenshtein distance, for short keys only.
  static std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      std::size_t diagonal = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        const std::size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diagonal = above;
      }
    }
    return row[b.size()];
  }

  static std::string range_text(std::int64_t min, std::int64_t max) {
    return "must be between " + std::to_string(min) + " and " + std::to_string(max);
  }

  const json& object_;
  std::string prefix_;
  std::vector<std::string_view> known_;
};

// interval_seconds or interval_minutes (not both), as seconds.
std::optional<int> interval(Fields& f) {
  const auto seconds = f.integer("interval_seconds", 1, kMaxIntervalSeconds);
  const auto minutes = f.integer("interval_minutes", 1, kMaxIntervalSeconds / 60);
  if (seconds && minutes) {
    throw bad_field(f.name("interval_minutes"), "invalid_value",
                    "give interval_seconds or interval_minutes, not both");
  }
  if (minutes) return *minutes * 60;
  return seconds;
}

// A create's and a preview's refusal of a recurring schedule without its interval.
void require_interval_if_recurring(Fields& f, const std::string& schedule_type,
                                   const std::optional<int>& interval_seconds) {
  if (schedule_type == "recurring" && !interval_seconds) {
    throw bad_field(f.name("interval_seconds"), "missing_field",
                    "is required for recurring (or interval_minutes)");
  }
}

// A create's and a preview's stop condition: db_check and its flag key, both or neither.
void read_stop_condition(Fields& f, std::optional<std::string>& type,
                         std::optional<std::string>& value) {
  type = f.choice("stop_condition_type", {"db_check"}, false);
  value = f.text("stop_condition_value", kMaxNameChars, false);
}
void require_stop_condition_pair(Fields& f, const std::optional<std::string>& type,
                                 const std::optional<std::string>& value) {
  if (value && !type) {
    throw bad_field(f.name("stop_condition_type"), "missing_field",
                    "is required with stop_condition_value");
  }
  if (type && !value) {
    throw bad_field(f.name("stop_condition_value"), "missing_field",
                    "is required with stop_condition_type (the flag key)");
  }
}

bool digits(const std::string& s, std::size_t at, std::size_t n) {
  if (at + n > s.size()) return false;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

int number(const std::string& s, std::size_t at, std::size_t n) {
  int v = 0;
  std::from_chars(s.data() + at, s.data() + at + n, v);
  return v;
}

// The DOM parser of nlohmann::json, but a key given twice in one object stops the parse instead
// of the last one silently winning, and so does an array or object past kMaxJsonDepth: the tree
// is walked by recursion afterwards (copied, dumped, checked), and 100,000 nested arrays in 200 KB
// overflowed the stack. It builds the tree as json::parse does (one map insertion a key, which
// also tells whether the key was new), so refusing duplicates costs nothing more.
class UniqueKeyParser {
 public:
  static constexpr int kNumberOverflow = 406;  // nlohmann's out_of_range.406
  explicit UniqueKeyParser(json& root) : root_(root) {}

  bool null() { return value(nullptr); }
  bool boolean(bool v) { return value(v); }
  bool number_integer(json::number_integer_t v) { return value(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value(v); }
  bool number_float(json::number_float_t v, const json::string_t& text) {
    if (reads_exactly(v, text)) return value(v);
    // Stored as read, it would be another number than the one sent, silently.
    const std::string field = reading();
    refusal_ = bad_field(field, "invalid_value",
                         (text.size() > 40 ? text.substr(0, 40) + "..." : text) +
                             " cannot be kept exactly: a JSON number that is not a whole number "
                             "of up to 19 digits is read as a 64-bit float (15 to 17 significant "
                             "digits); send it as a string");
    return false;
  }
  bool string(json::string_t& v) { return value(v); }
  bool binary(json::binary_t& v) { return value(json::binary(v)); }
  bool start_object(std::size_t) { return open(json::value_t::object); }
  bool key(json::string_t& k) {
    auto [it, fresh] = open_.back()->get_ref<json::object_t&>().emplace(k, nullptr);
    if (!fresh) {
      const std::string field = path() + (open_.size() > 1 ? "." : "") + k;
      refusal_ = ApiError(400, "invalid_json", field + ": is given twice in one object", field);
      return false;
    }
    slot_ = &it->second;
    pending_key_ = k;
    return true;
  }
  bool end_object() {
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return open(json::value_t::array); }
  bool end_array() {
    open_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string& token, const nlohmann::detail::exception& e) {
    // Text that is not UTF-8 is named by where it is, as in a path or a query parameter; so is
    // an escape of half a surrogate pair (\ud800 alone), which no UTF-8 text can hold, and a
    // number past a 64-bit float's range (1e309: JSON all the same; explore32a F4).
    const std::string_view what = e.what();
    if (e.id == kNumberOverflow) {
      refusal_ = bad_field(reading(), "invalid_value",
                           (token.size() > 40 ? token.substr(0, 40) + "..." : token) +
                               " cannot be kept: it is past a 64-bit float's range");
    } else if (what.find("UTF-8") != std::string_view::npos) {
      refusal_ = bad_field(reading(), "invalid_value", "must be valid UTF-8");
    } else if (what.find("surrogate") != std::string_view::npos) {
      refusal_ = bad_field(reading(), "invalid_value",
                           "must be valid UTF-8: \\ud800-\\udbff is escaped only before "
                           "\\udc00-\\udfff, as a pair");
    }
    return false;
  }

  // Why the parse was stopped although the text may be JSON: a key given twice, named by its
  // path (items[2].run_at), a value nested too deeply (payload.a[0][0]...), or text that is not
  // UTF-8 (payload.k).
  const std::optional<ApiError>& refusal() const { return refusal_; }

 private:
  template <typename V>
  bool value(V&& v) {
    pending_key_.reset();
    if (open_.empty()) {
      root_ = json(std::forward<V>(v));
      last_ = &root_;
    } else if (open_.back()->is_array()) {
      open_.back()->emplace_back(std::forward<V>(v));
      last_ = &open_.back()->back();
    } else {
      *slot_ = json(std::forward<V>(v));
      last_ = slot_;
    }
    return true;
  }

  bool open(json::value_t type) {
    value(type);
    open_.push_back(last_);
    if (open_.size() <= kMaxJsonDepth) return true;
    const std::string field = path();
    refusal_ = ApiError(400, "invalid_value",
                        field + ": is nested too deeply: arrays and objects nest at most " +
                            std::to_string(kMaxJsonDepth) + " levels deep (the body is the first)",
                        field);
    return false;
  }

  // What was being read when the parse stopped: a key's value, an array's next element, or a
  // key of the innermost object (named by that object; the body for the outermost).
  std::string reading() const {
    const std::string at = path();
    if (open_.empty()) return "body";
    if (open_.back()->is_array()) return at + "[" + std::to_string(open_.back()->size()) + "]";
    if (pending_key_) return at + (at.empty() ? "" : ".") + *pending_key_;
    return at.empty() ? "body" : at;
  }

  // Where the innermost open container is: each one's place in its parent (only for errors).
  std::string path() const {
    std::string out;
    for (std::size_t i = 1; i < open_.size(); ++i) {
      const json& parent = *open_[i - 1];
      if (parent.is_array()) {
        out += "[" + std::to_string(parent.size() - 1) + "]";
        continue;
      }
      for (const auto& [name, child] : parent.items()) {
        if (&child == open_[i]) out += (out.empty() ? "" : ".") + name;
      }
    }
    return out;
  }

  json& root_;
  std::vector<json*> open_;                 // the containers being filled, outermost first
  json* slot_ = nullptr;                    // the value of the key just read
  json* last_ = nullptr;                    // the value just added
  std::optional<std::string> pending_key_;  // a key whose value has not begun
  std::optional<ApiError> refusal_;
};

// An item of a batch that is not an object: 400 naming it (items[1]).
ApiError not_an_object(const std::string& prefix) {
  const std::string field = prefix.empty() ? "body" : prefix.substr(0, prefix.size() - 1);
  return ApiError(400, "invalid_type", field + ": must be a JSON object", field);
}

}  // namespace

void check_no_body(const std::string& body) {
  if (body.empty()) return;
  const json parsed = parse_object(body);
  Fields(parsed, "").reject_unknown();
}

json parse_object(const std::string& body) {
  // Also a POST without Content-Length: its body is empty (RFC 9112 section 6.3).
  if (body.empty())
    throw ApiError(400, "missing_field", "the body is missing; send a JSON object", "body");
  json parsed;
  UniqueKeyParser parser(parsed);
  if (!json::sax_parse(body, &parser)) {
    if (parser.refusal()) throw *parser.refusal();
    throw ApiError(400, "invalid_json", "the body is not valid JSON", "body");
  }
  if (!parsed.is_object())
    throw ApiError(400, "invalid_type", "the body must be a JSON object", "body");
  // Only an escape can put U+0000 in a JSON string (the parser refuses a raw NUL byte).
  if (body.find("\\u0000") != std::string::npos) check_no_nul(parsed);
  return parsed;
}

void CreateInput::append_json(std::string& out) const {
  const auto field = [&out](std::string_view name) {
    out += out.back() == '{' ? "\"" : ",\"";
    out += name;
    out += "\":";
  };
  const auto put = [&](std::string_view name, std::string_view value) {
    field(name);
    append_json_string(out, value);
  };
  const auto text = [&](std::string_view name, const std::optional<std::string>& value) {
    if (value) put(name, *value);
  };
  const auto number = [&](std::string_view name, std::optional<int> value) {
    if (!value) return;
    field(name);
    out += std::to_string(*value);
  };
  out += '{';
  put("entity_type", entity_type);
  put("entity_id", entity_id);
  put("event_type", event_type);
  put("channel", channel);
  put("schedule_type", schedule_type);
  field("payload");
  out += payload.empty() ? "{}" : payload.dump();
  text("run_at", run_at);
  text("target", target);
  text("stop_condition_type", stop_condition_type);
  text("stop_condition_value", stop_condition_value);
  text("ends_at", ends_at);
  number("interval_seconds", interval_seconds);
  number("max_fires", max_fires);
  text("cron", cron);
  text("timezone", timezone);
  text("misfire_policy", misfire_policy);
  number("max_attempts", max_attempts);
  if (request) {
    field("request");
    out += request->dump();
  }
  out += '}';
}

CreateInput parse_create(const json& body, const Secrets& secrets, const AddressGuard& guard,
                         const std::string& prefix) {
  if (!body.is_object()) throw not_an_object(prefix);
  Fields f(body, prefix);
  CreateInput in;
  in.entity_type = *f.text("entity_type", kMaxNameChars, true);
  in.entity_id = *f.text("entity_id", kMaxNameChars, true);
  in.event_type = *f.text("event_type", kMaxNameChars, true);
  in.channel = *f.choice("channel", {"log", "webhook", "email"}, true);
  in.schedule_type = *f.choice("schedule_type", {"one_time", "recurring", "cron"}, true);
  in.interval_seconds = interval(f);
  in.cron = f.text("cron", kMaxNameChars, false);
  in.timezone = f.text("timezone", 64, false);
  in.run_at = f.time("run_at");
  in.target = f.text("target", kMaxTargetChars, false);
  // Sent as written: a developer used to rules' templates would otherwise get "{{...}}" literally.
  // The one exception is a webhook's URL kept whole in a secret.
  const bool secret_url = in.target && in.channel == "webhook" && secret_address_name(*in.target);
  if (in.target && !secret_url && in.target->find("{{") != std::string::npos)
    throw bad_field(f.name("target"), "invalid_value",
                    "a reminder's target is not a template; rules render {{...}} in theirs (a "
                    "webhook's URL can be kept whole in a secret: {{secret.NAME}} alone)");
  if (in.target && in.channel == "webhook")
    check_webhook_target(f.name("target"), *in.target, secrets, guard);
  if (auto payload = f.object("payload")) in.payload = std::move(*payload);
  read_stop_condition(f, in.stop_condition_type, in.stop_condition_value);
  in.max_fires = f.integer("max_fires", 1, 2147483647);
  in.ends_at = f.time("ends_at");
  in.misfire_policy = f.choice("misfire_policy", {"fire_once", "skip", "fire_all"}, false);
  in.max_attempts = f.integer("max_attempts", 1, kMaxAttempts);
  if (const json* request = f.get("request"); request != nullptr && !request->is_null()) {
    check_request(*request, in.channel, prefix, secrets, in.target);
    in.request = *request;
  }
  f.reject_unknown();

  // The interval is named as sent, as nudge.create_reminders names an item's interval_minutes.
  const std::string interval_field =
      f.name(body.contains("interval_minutes") ? "interval_minutes" : "interval_seconds");
  require_interval_if_recurring(f, in.schedule_type, in.interval_seconds);
  if (in.schedule_type == "one_time") {
    if (!in.run_at) throw bad_field(f.name("run_at"), "missing_field", "is required for one_time");
    if (in.interval_seconds)
      throw bad_field(interval_field, "invalid_value", "is only for recurring reminders");
    if (in.misfire_policy && *in.misfire_policy != "fire_once") {
      throw bad_field(f.name("misfire_policy"), "invalid_value",
                      "is only for recurring and cron reminders (one_time takes fire_once)");
    }
  } else if (in.schedule_type == "cron" && !in.cron) {
    throw bad_field(f.name("cron"), "missing_field", "is required for cron");
  }
  if (in.schedule_type == "cron" && in.interval_seconds)
    throw bad_field(interval_field, "invalid_value", "is not for cron reminders");
  require_stop_condition_pair(f, in.stop_condition_type, in.stop_condition_value);
  return in;
}

PatchInput parse_patch(const json& body) {
  Fields f(body, "");
  if (body.contains("status")) {
    throw bad_field(
        "status", "immutable_field",
        "is changed by POST /v1/reminders/{id}/pause, /resume, /cancel or /retry, not by PATCH");
  }
  for (const char* fixed : {"entity_type", "entity_id", "event_type", "channel", "schedule_type",
                            "target", "stop_condition_type", "stop_condition_value",
                            "misfire_policy", "max_attempts", "request"}) {
    if (body.contains(fixed)) {
      throw bad_field(fixed, "immutable_field", "cannot be changed; create a new reminder instead");
    }
  }
  PatchInput in;
  // null removes a limit; what every live reminder has cannot be removed.
  for (const char* kept :
       {"run_at", "interval_seconds", "interval_minutes", "payload", "cron", "timezone"}) {
    if (const auto it = body.find(kept); it != body.end() && it->is_null()) {
      throw bad_field(
          kept, "invalid_value",
          std::string("cannot be removed (null removes only max_fires and ends_at)") +
              (std::string_view(kept) == "payload" ? "; send {} for an empty one" : ""));
    }
  }
  for (const char* limit : {"max_fires", "ends_at"}) {
    if (const auto it = body.find(limit); it != body.end() && it->is_null()) {
      in.clear.emplace_back(limit);
    }
  }
  in.run_at = f.time("run_at");
  in.interval_seconds = interval(f);
  in.interval_in_minutes = body.contains("interval_minutes");
  in.payload = f.object("payload");
  in.max_fires = f.integer("max_fires", 1, 2147483647);
  in.ends_at = f.time("ends_at");
  in.cron = f.text("cron", kMaxNameChars, false);
  in.timezone = f.text("timezone", 64, false);
  f.reject_unknown();
  if (!in.run_at && !in.interval_seconds && !in.payload && !in.max_fires && !in.ends_at &&
      !in.cron && !in.timezone && in.clear.empty()) {
    throw ApiError(400, "missing_field",
                   "nothing to change: give run_at, interval_seconds, interval_minutes, payload, "
                   "cron, timezone, max_fires or ends_at (null removes max_fires or ends_at)",
                   "body");
  }
  return in;
}

PreviewInput parse_preview(const json& body) {
  Fields f(body, "");
  PreviewInput in;
  in.schedule_type = *f.choice("schedule_type", {"one_time", "recurring", "cron"}, true);
  in.run_at = f.time("run_at");
  in.interval_seconds = interval(f);
  in.cron = f.text("cron", kMaxNameChars, false);
  in.timezone = f.text("timezone", 64, false);
  in.text_timezone = f.text("text_timezone", 64, false);
  read_stop_condition(f, in.stop_condition_type, in.stop_condition_value);
  in.max_fires = f.integer("max_fires", 1, 2147483647);
  in.ends_at = f.time("ends_at");
  in.from = f.time("from");
  if (auto policy = f.choice("misfire_policy", {"fire_once", "skip", "fire_all"}, false))
    in.misfire_policy = *policy;
  if (auto count = f.integer("count", 1, 100)) in.count = *count;
  f.reject_unknown();
  require_interval_if_recurring(f, in.schedule_type, in.interval_seconds);
  require_stop_condition_pair(f, in.stop_condition_type, in.stop_condition_value);
  // A cron schedule's sentence is in its own zone: a text_timezone would be ignored, unchecked.
  if (in.text_timezone && in.schedule_type == "cron")
    throw bad_field(f.name("text_timezone"), "invalid_value",
                    "is not for cron schedules: their sentence is in their own timezone");
  return in;
}

WordsInput parse_words(const json& body) {
  Fields f(body, "");
  WordsInput in;
  in.text = *f.text("text", 1000, true);
  if (auto zone = f.text("timezone", 64, false)) in.timezone = *zone;
  in.now = f.time("now");
  f.reject_unknown();
  return in;
}

std::string parse_target_host(const json& body) {
  Fields f(body, "");
  // A host key: a URL of 2,048 characters and the default port it is keyed with.
  std::string host = *f.text("host", kMaxHostKeyChars, true);
  f.reject_unknown();
  return host;
}

bool parse_flag_value(const json& body) {
  Fields f(body, "");
  const json* v = f.get("value");
  if (v == nullptr) throw f.missing("value");
  f.reject_unknown();
  if (!v->is_boolean()) throw wrong_type("value", "true or false", *v);
  return v->get<bool>();
}

void check_flag_key(const std::string& key) {
  // Characters, as nudge.set_flag counts them: 200 of é were refused as bytes.
  if (key.empty() || utf8::code_points(key) > kMaxNameChars) {
    throw bad_field("key", "invalid_value", "must be 1 to 200 characters");
  }
}

std::string parse_contact_address(const json& body) {
  Fields f(body, "");
  auto address = f.text("address", kMaxTargetChars, true);
  f.reject_unknown();
  return *address;
}

const json& batch_items(const json& body, const std::string& what) {
  Fields f(body, "");
  if (f.get("items") == nullptr) throw f.missing("items");
  f.reject_unknown();
  const json& items = body["items"];
  if (!items.is_array()) throw bad_field("items", "invalid_type", "must be an array");
  if (items.empty() || items.size() > kMaxBatchItems) {
    throw bad_field("items", "invalid_value", "must hold 1 to 1000 " + what);
  }
  return items;
}

json EventInput::to_json() const {
  json j{{"event_type", event_type},
         {"entity_type", entity_type},
         {"entity_id", entity_id},
         {"data", data}};
  if (key) j["key"] = *key;
  if (occurred_at) j["occurred_at"] = *occurred_at;
  return j;
}

EventInput parse_event(const json& body, const std::string& prefix) {
  if (!body.is_object()) throw not_an_object(prefix);
  Fields f(body, prefix);
  EventInput in;
  in.event_type = *f.text("event_type", kMaxNameChars, true);
  in.entity_type = *f.text("entity_type", kMaxNameChars, true);
  in.entity_id = *f.text("entity_id", kMaxNameChars, true);
  if (auto data = f.object("data")) in.data = std::move(*data);
  in.key = f.text("key", kMaxNameChars, false);
  in.occurred_at = f.time("occurred_at");
  f.reject_unknown();
  return in;
}

RuleInput parse_rule(const json& body, bool partial) {
  Fields f(body, "");
  RuleInput in;
  if (partial) {
    // A change says what it sets: only the conditions can be taken away (null: none).
    for (const char* key : {"name", "event_type", "enabled", "action"}) {
      if (const json* v = f.get(key); v != nullptr && v->is_null())
        throw bad_field(key, "invalid_type", "cannot be null: a rule always has one");
    }
    if (const json* v = f.get("when"); v != nullptr && v->is_null()) in.when = json::object();
  }
  in.name = f.text("name", kMaxNameChars, !partial);
  in.event_type = f.text("event_type", kMaxNameChars, !partial);
  in.enabled = f.boolean("enabled");
  if (!in.when) in.when = f.object("when");
  in.action = f.object("action");
  if (!partial && !in.action) throw f.missing("action");
  f.reject_unknown();
  if (partial && !in.name && !in.event_type && !in.enabled && !in.when && !in.action) {
    throw ApiError(400, "missing_field",
                   "nothing to change: give name, event_type, enabled, when or action", "body");
  }
  return in;
}

BulkInput parse_bulk(const json& body) {
  Fields f(body, "");
  BulkInput in;
  if (const json* ids = f.get("ids"); ids != nullptr && !ids->is_null()) {
    if (!ids->is_array()) throw wrong_type("ids", "an array of reminder ids", *ids);
    if (ids->empty() || ids->size() > kMaxBatchItems) {
      throw bad_field("ids", "invalid_value", "must hold 1 to 1000 reminder ids");
    }
    std::string list = "{";
    for (std::size_t i = 0; i < ids->size(); ++i) {
      const json& id = (*ids)[i];
      const bool positive =
          id.is_number_unsigned()
              ? id.get<std::uint64_t>() >= 1 &&
                    id.get<std::uint64_t>() <=
                        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
              : id.is_number_integer() && id.get<std::int64_t>() >= 1;
      if (!positive) {
        throw bad_field("ids[" + std::to_string(i) + "]", "invalid_value",
                        "must be a reminder id (a positive integer)");
      }
      list += (i > 0 ? "," : "") + id.dump();
    }
    in.ids = list + "}";
  }
  in.status = f.choice("status", {"ACTIVE", "PAUSED", "COMPLETED", "CANCELLED", "FAILED"}, false);
  in.entity_type = f.text("entity_type", kMaxNameChars, false);
  in.entity_id = f.text("entity_id", kMaxNameChars, false);
  in.event_type = f.text("event_type", kMaxNameChars, false);
  in.channel = f.choice("channel", {"log", "webhook", "email"}, false);
  f.reject_unknown();
  if (!in.ids && !in.status && !in.entity_type && !in.entity_id && !in.event_type && !in.channel) {
    throw ApiError(400, "missing_field",
                   "name ids or at least one of status, entity_type, entity_id, event_type, "
                   "channel (status ACTIVE matches every active reminder)",
                   "body");
  }
  return in;
}

void check_path_name(const std::string& field, const std::string& value) {
  const std::size_t chars = utf8::code_points(value);
  if (chars < 1 || chars > kMaxNameChars) {
    throw bad_field(field, "invalid_value", "must be 1 to 200 characters");
  }
}

void check_contact_channel(const std::string& channel) {
  if (channel != "webhook" && channel != "email") {
    throw bad_field("channel", "invalid_value", "must be webhook or email");
  }
}

std::optional<std::int64_t> parse_id(const std::string& text) {
  if (text.empty() || text.size() > 19 || !digits(text, 0, text.size())) return std::nullopt;
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id < 1) return std::nullopt;
  return id;
}

bool is_rfc3339(const std::string& s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  if (!digits(s, 0, 4) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2) || s[7] != '-' ||
      !digits(s, 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2) ||
      s[13] != ':' || !digits(s, 14, 2) || s[16] != ':' || !digits(s, 17, 2)) {
    return false;
  }
  const int year = number(s, 0, 4), month = number(s, 5, 2), day = number(s, 8, 2);
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year < 1 || month < 1 || month > 12 || day < 1 ||
      day > kDays[month - 1] + (month == 2 && leap ? 1 : 0)) {
    return false;
  }
  // Second 60 is a leap second (23:59:60Z, or HH:59:60 under a whole-hour offset), which
  // PostgreSQL reads as the next minute's 00 and refuses with a fraction past it.
  const int second = number(s, 17, 2);
  if (number(s, 11, 2) > 23 || number(s, 14, 2) > 59 || second > 60 ||
      (second == 60 && number(s, 14, 2) != 59)) {
    return false;
  }
  std::size_t at = 19;
  if (at < s.size() && s[at] == '.') {
    std::size_t n = 0;
    while (at + 1 + n < s.size() && digits(s, at + 1 + n, 1)) {
      if (second == 60 && s[at + 1 + n] != '0') return false;
      ++n;
    }
    if (n == 0 || n > 9) return false;
    at += 1 + n;
  }
  if (at + 1 == s.size() && (s[at] == 'Z' || s[at] == 'z')) return true;
  // PostgreSQL takes offsets up to 15:59 (RFC 3339 allows 23:59): "+20:00" would reach it and
  // come back as its own error, naming no field.
  return at + 6 == s.size() && (s[at] == '+' || s[at] == '-') && digits(s, at + 1, 2) &&
         s[at + 3] == ':' && digits(s, at + 4, 2) && number(s, at + 1, 2) <= kMaxOffsetHours &&
         number(s, at + 4, 2) <= 59;
}

int parse_limit(const std::optional<std::string>& text) {
  if (!text) return kDefaultPageSize;
  int limit = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || limit < 1 ||
      limit > kMaxPageSize) {
    throw bad_field("limit", "invalid_value", "must be an integer from 1 to 500");
  }
  return limit;
}

std::string encode_cursor(const std::string& position) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "c1";
  for (const unsigned char c : position) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

ApiError not_a_cursor() {
  return bad_field("cursor", "invalid_value", "is not a cursor this server gave");
}

std::string decode_cursor(const std::string& cursor) {
  // Positions are up to kMaxHostKeyChars bytes: a webhook host key or a flag key (200
  // characters, up to 800 bytes). 200 here refused the cursor this server gave after a key of
  // 100 bytes, and paging stopped there for good (explore32a F3; explore32d F2).
  constexpr std::size_t kMaxCursor = 2 + 2 * kMaxHostKeyChars;
  if (cursor.size() < 4 || cursor.size() > kMaxCursor || cursor.rfind("c1", 0) != 0 ||
      cursor.size() % 2 != 0) {
    throw not_a_cursor();
  }
  std::string out;
  for (std::size_t i = 2; i < cursor.size(); i += 2) {
    int byte = 0;
    const auto [end, ec] = std::from_chars(cursor.data() + i, cursor.data() + i + 2, byte, 16);
    if (ec != std::errc() || end != cursor.data() + i + 2) throw not_a_cursor();
    out += static_cast<char>(byte);
  }
  // Every position this server gives is text; other bytes would reach the database.
  if (text_problem(out)) throw not_a_cursor();
  return out;
}

}  // namespace nudge::api
