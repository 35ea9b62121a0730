#include "request_head.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>

#include "request_framing.hpp"

namespace nudge::api {
namespace {

constexpr std::string_view kFormType = "application/x-www-form-urlencoded";

}  // namespace

namespace {

// The weight of one Accept-Encoding entry's parameters (";q=0.5"): 1 without a q.
double weight_of(std::string_view params) {
  while (!params.empty()) {
    const auto end = params.find(';', 1);
    std::string_view param =
        params.substr(1, end == std::string_view::npos ? params.npos : end - 1);
    param.remove_prefix(std::min(param.find_first_not_of(" \t"), param.size()));
    if (param.starts_with("q=") || param.starts_with("Q=")) {
      double q = 1;
      const auto value = param.substr(2);
      std::from_chars(value.data(), value.data() + value.size(), q);
      return q;
    }
    params.remove_prefix(end == std::string_view::npos ? params.size() : end);
  }
  return 1;
}

// "gzip" when `accept` (the Accept-Encoding values, joined) takes gzip: listed with a weight
// above 0, or not listed and * is (RFC 9110 section 12.5.3), and not below identity's when
// that is listed; "" otherwise.
std::string gzip_if_accepted(std::string_view accept) {
  std::optional<double> gzip;
  std::optional<double> any;
  std::optional<double> identity;
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    std::string_view item = accept.substr(0, comma);
    accept.remove_prefix(comma == std::string_view::npos ? accept.size() : comma + 1);
    const auto semicolon = item.find(';');
    const std::string_view name = item.substr(0, semicolon);
    const double q = semicolon == std::string_view::npos ? 1 : weight_of(item.substr(semicolon));
    if (is_token(name, "gzip") || is_token(name, "x-gzip")) gzip = q;
    if (is_token(name, "*")) any = q;
    if (is_token(name, "identity")) identity = q;
  }
  const double weight = gzip.value_or(any.value_or(0));
  return weight > 0 && weight >= identity.value_or(0) ? "gzip" : "";
}

// Every value of header `name`, as one comma-separated list (RFC 9110 section 5.3).
std::string joined_values(const httplib::Request& req, const char* name) {
  std::string list;
  const auto [first, last] = req.headers.equal_range(name);
  for (auto it = first; it != last; ++it) list += it->second + ",";
  return list;
}

}  // namespace

void settle_accept_encoding(httplib::Request& req) {
  if (!req.has_header("Accept-Encoding")) return;
  const std::string accept = joined_values(req, "Accept-Encoding");
  req.headers.erase("Accept-Encoding");
  if (const std::string gzip = gzip_if_accepted(accept); !gzip.empty())
    req.set_header("Accept-Encoding", gzip);
}

bool has_readable_request_line(const httplib::Request& req) {
  // RFC 9110 section 5.6.2.
  constexpr std::string_view kTokenMarks = "!#$%&'*+-.^_`|~";
  const auto token_char = [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           kTokenMarks.find(c) != std::string_view::npos;
  };
  return !req.method.empty() && std::all_of(req.method.begin(), req.method.end(), token_char) &&
         (req.target.starts_with('/') || req.target == "*") &&
         (req.version == "HTTP/1.1" || req.version == "HTTP/1.0");
}

bool has_read_head(const httplib::Request& req) {
  // httplib sets it once the head is read, before anything else looks at the request.
  return req.has_header("REMOTE_ADDR");
}

bool settle_connection(httplib::Request& req) {
  const std::string options = joined_values(req, "Connection");
  for (std::string_view rest = options; !rest.empty();) {
    const auto comma = rest.find(',');
    if (is_token(rest.substr(0, comma), "close")) {
      req.headers.erase("Connection");
      req.set_header("Connection", "close");
      return true;
    }
    rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
  }
  return false;
}

void settle_absolute_form(httplib::Request& req) {
  const auto scheme_end = req.target.find("://");
  if (scheme_end == std::string::npos ||
      !(is_token(std::string_view(req.target).substr(0, scheme_end), "http") ||
        is_token(std::string_view(req.target).substr(0, scheme_end), "https")))
    return;
  const auto authority_start = scheme_end + 3;
  const auto path_start = req.target.find_first_of("/?", authority_start);
  const std::string authority = req.target.substr(authority_start, path_start - authority_start);
  std::string origin = path_start == std::string::npos ? "/" : req.target.substr(path_start);
  if (origin.front() == '?') origin.insert(0, "/");
  req.target = std::move(origin);
  req.path = req.target.substr(0, req.target.find('?'));
  if (!authority.empty()) {
    req.headers.erase("Host");
    req.set_header("Host", authority);
  }
}

void ignore_range(httplib::Request& req) {
  req.ranges.clear();
  req.headers.erase("Range");
}

bool has_multipart_type(const httplib::Request& req) {
  const std::string type = req.get_header_value("Content-Type");
  constexpr std::string_view kMultipart = "multipart/";
  return type.size() >= kMultipart.size() &&
         std::equal(kMultipart.begin(), kMultipart.end(), type.begin(), [](char a, char b) {
           return a == std::tolower(static_cast<unsigned char>(b));
         });
}

bool has_unreadable_length(const httplib::Request& req) {
  const auto count = req.get_header_value_count("Content-Length");
  return count > 1 || (count == 1 && !parse_content_length(req.get_header_value("Content-Length")));
}

bool has_unreadable_transfer_encoding(const httplib::Request& req) {
  const auto count = req.get_header_value_count("Transfer-Encoding");
  return count > 0 && (count > 1 || req.has_header("Content-Length") ||
                       !is_token(req.get_header_value("Transfer-Encoding"), "chunked"));
}

// Whether the request announces a body: chunked, or a Content-Length over 0.
bool has_body(const httplib::Request& req) {
  return req.has_header("Transfer-Encoding") ||
         parse_content_length(req.get_header_value("Content-Length")).value_or(0) > 0;
}

httplib::Server::HandlerResponse settle_request_head(httplib::Request& req, httplib::Response& res,
                                                     std::size_t max_body_bytes) {
  if (has_unreadable_length(req) || has_unreadable_transfer_encoding(req)) {
    res.status = 400;
    return httplib::Server::HandlerResponse::Handled;
  }
  if (req.has_header("Content-Length") &&
      *parse_content_length(req.get_header_value("Content-Length")) > max_body_bytes) {
    res.status = 413;
    return httplib::Server::HandlerResponse::Handled;
  }
  // Named by the router's error handler: Content-Type, else Content-Encoding.
  if ((has_multipart_type(req) && has_body(req)) ||
      (req.has_header("Content-Encoding") &&
       !is_token(req.get_header_value("Content-Encoding"), "identity"))) {
    res.status = 415;
    return httplib::Server::HandlerResponse::Handled;
  }
  // A form type says nothing about JSON; a multipart one without a body would have httplib parse
  // an empty multipart body (a 400 naming nothing).
  if (req.get_header_value("Content-Type").starts_with(kFormType) || has_multipart_type(req))
    req.headers.erase("Content-Type");
  req.path = req.target.substr(0, req.target.find('?'));
  return httplib::Server::HandlerResponse::Unhandled;
}

}  // namespace nudge::api
