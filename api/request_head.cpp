#include "request_head.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "request_framing.hpp"

namespace nudge::api {
namespace {

constexpr std::string_view kFormType = "application/x-www-form-urlencoded";

}  // namespace

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
  if (has_multipart_type(req) ||
      (req.has_header("Content-Encoding") &&
       !is_token(req.get_header_value("Content-Encoding"), "identity"))) {
    res.status = 415;
    return httplib::Server::HandlerResponse::Handled;
  }
  if (req.get_header_value("Content-Type").starts_with(kFormType))
    req.headers.erase("Content-Type");
  req.path = req.target.substr(0, req.target.find('?'));
  return httplib::Server::HandlerResponse::Unhandled;
}

}  // namespace nudge::api
