#include "route_support.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>

#include "errors.hpp"
#include "input.hpp"
#include "nudge/utf8.hpp"
#include "text_input.hpp"

namespace nudge::api {
namespace {

// `name` with every byte outside printable ASCII (and '%') percent-encoded: how a query
// parameter's name that is not text is named in the answer.
std::string as_sent(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte > 0x20 && byte < 0x7F && byte != '%') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

constexpr const char* kBadEscape =
    "must be percent-encoded: % is followed by two hex digits (%25 for % itself)";

// A path segment or a query parameter's name or value as sent, decoded: "%XX" is the byte XX
// (and, in a query, '+' a space, as httplib reads it); nullopt when a '%' is not followed by two
// hex digits.
std::optional<std::string> percent_decoded(std::string_view text, bool plus_is_space = false) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += plus_is_space && text[i] == '+' ? ' ' : text[i];
      continue;
    }
    unsigned char byte = 0;
    const char* digits = text.data() + i + 1;
    if (i + 2 >= text.size() || std::from_chars(digits, digits + 2, byte, 16).ptr != digits + 2)
      return std::nullopt;
    out += static_cast<char>(byte);
    i += 2;
  }
  return out;
}

}  // namespace

std::string path_param(const httplib::Request& req, std::size_t group, const std::string& field) {
  // Routes match the path as sent (request_head.hpp): each segment is decoded on its own.
  auto text = percent_decoded(req.matches[group].str());
  if (!text) throw bad_field(field, "invalid_value", kBadEscape);
  check_text(field, *text);
  return *text;
}

std::int64_t path_id(const httplib::Request& req, const std::string& what) {
  const std::string text = path_param(req, 1, "id");
  const auto id = parse_id(text);
  if (!id) {
    const bool vowel =
        !what.empty() && std::string_view("aeiou").find(what[0]) != std::string_view::npos;
    throw bad_field(
        "id", "invalid_value",
        std::string("must be ") + (vowel ? "an " : "a ") + what + " id (a positive integer)");
  }
  return *id;
}

void check_query_text(const httplib::Request& req) {
  // httplib keeps a '%' it cannot decode as itself: the query as sent says whether one is there.
  const auto question = req.target.find('?');
  std::string_view rest =
      question == std::string::npos ? "" : std::string_view(req.target).substr(question + 1);
  while (!rest.empty()) {
    const std::string_view part = rest.substr(0, rest.find('&'));
    rest.remove_prefix(std::min(part.size() + 1, rest.size()));
    const std::string_view name = part.substr(0, part.find('='));
    const auto decoded_name = percent_decoded(name, true);
    if (!decoded_name) throw bad_field(std::string(name), "invalid_value", kBadEscape);
    if (name.size() < part.size() && !percent_decoded(part.substr(name.size() + 1)))
      throw bad_field(*decoded_name, "invalid_value", kBadEscape);
  }
  for (const auto& [name, value] : req.params) {
    check_text(as_sent(name), name);
    check_text(name, value);
  }
}

std::optional<std::string> query(const httplib::Request& req, const std::string& name) {
  if (!req.has_param(name.c_str())) return std::nullopt;
  if (req.get_param_value_count(name.c_str()) > 1) {
    throw bad_field(name, "invalid_value", "must be given once");
  }
  return req.get_param_value(name.c_str());
}

void reject_unknown_params(const httplib::Request& req, const std::set<std::string>& allowed) {
  // Only the query string: a form-encoded body is read as a body (request_head.hpp).
  for (const auto& [key, value] : req.params) {
    if (!allowed.contains(key))
      throw bad_field(key, "unknown_field", "is not a known query parameter");
  }
}

std::optional<std::string> filter(const httplib::Request& req, const std::string& name) {
  auto v = query(req, name);
  if (v && (v->empty() || utf8::code_points(*v) > kMaxNameChars)) {
    throw bad_field(name, "invalid_value", "must be 1 to 200 characters");
  }
  return v;
}

std::optional<std::string> choice_filter(const httplib::Request& req, const std::string& name,
                                         std::initializer_list<std::string_view> allowed) {
  auto v = query(req, name);
  if (v && std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
    std::string list;
    for (const auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    throw bad_field(name, "invalid_value", "must be one of " + list);
  }
  return v;
}

std::optional<bool> boolean_filter(const httplib::Request& req, const std::string& name) {
  const auto v = query(req, name);
  if (!v) return std::nullopt;
  if (*v != "true" && *v != "false")
    throw bad_field(name, "invalid_value", "must be true or false");
  return *v == "true";
}

std::optional<std::int64_t> id_cursor(const httplib::Request& req) {
  const auto cursor = query(req, "cursor");
  if (!cursor) return std::nullopt;
  const auto before = parse_id(decode_cursor(*cursor));
  if (!before) throw not_a_cursor();
  return before;
}

std::optional<std::string> time_cursor(const httplib::Request& req) {
  const auto cursor = query(req, "cursor");
  if (!cursor) return std::nullopt;
  auto before = decode_cursor(*cursor);
  if (!is_rfc3339(before)) throw not_a_cursor();
  return before;
}

std::string page(const pqxx::result& rows, int limit) {
  std::string out = "{\"items\":[";
  const int n = std::min<int>(static_cast<int>(rows.size()), limit);
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    out += rows[i][0].c_str();
  }
  out += "],\"next_cursor\":";
  if (static_cast<int>(rows.size()) > limit) {
    out += nlohmann::json(encode_cursor(rows[n - 1][1].c_str())).dump();
  } else {
    out += "null";
  }
  return out + "}";
}

void reply(httplib::Response& res, int status, std::string body) {
  res.status = status;
  // This cpp-httplib's set_content copies its string: the type is set, then the body moved in.
  res.set_content("", 0, "application/json");
  res.body = std::move(body);
}

}  // namespace nudge::api
