#include "stream_filter.hpp"

#include <array>
#include <string_view>

#include "errors.hpp"
#include "input.hpp"
#include "route_support.hpp"

namespace nudge::api {
namespace {

constexpr std::array<std::string_view, 4> kKinds = {"reminder", "flag", "event", "rule"};

unsigned kind_bit(std::string_view kind) {
  for (std::size_t i = 0; i < kKinds.size(); ++i) {
    if (kKinds[i] == kind) return 1u << i;
  }
  return 0;
}

unsigned parse_kinds(const std::string& text) {
  unsigned kinds = 0;
  std::size_t from = 0;
  for (;;) {
    const std::size_t comma = std::min(text.find(',', from), text.size());
    const unsigned bit = kind_bit(std::string_view(text).substr(from, comma - from));
    if (bit == 0)
      throw bad_field("types", "invalid_value",
                      "must be a comma-separated list of reminder, flag, event and rule");
    kinds |= bit;
    if (comma == text.size()) return kinds;
    from = comma + 1;
  }
}

}  // namespace

bool StreamFilter::matches(const Change& change) const {
  if ((kinds & kind_bit(change.kind)) == 0) return false;
  if (reminder_id && change.reminder_id != reminder_id) return false;
  if (entity_type && change.entity_type != entity_type) return false;
  if (entity_id && change.entity_id != entity_id) return false;
  return true;
}

StreamFilter parse_stream_filter(const httplib::Request& req) {
  StreamFilter f;
  if (const auto id = query(req, "reminder_id")) {
    f.reminder_id = parse_id(*id);
    if (!f.reminder_id) throw bad_field("reminder_id", "invalid_value", "must be a reminder id");
  }
  f.entity_type = filter(req, "entity_type");
  f.entity_id = filter(req, "entity_id");
  if (const auto types = query(req, "types")) f.kinds = parse_kinds(*types);
  return f;
}

}  // namespace nudge::api
