#include "router.hpp"

#include <chrono>
#include <stdexcept>

#include "access.hpp"
#include "caller.hpp"
#include "connection.hpp"
#include "errors.hpp"
#include "http_server.hpp"
#include "request_head.hpp"
#include "route_methods.hpp"
#include "route_support.hpp"

namespace nudge::api {
namespace {

void register_method(httplib::Server& server, const std::string& method, const std::string& pattern,
                     const Router::Handler& handler) {
  if (method == "GET") server.Get(pattern, handler);
  if (method == "POST") server.Post(pattern, handler);
  if (method == "PUT") server.Put(pattern, handler);
  if (method == "PATCH") server.Patch(pattern, handler);
  if (method == "DELETE") server.Delete(pattern, handler);
}

// "GET, HEAD, POST": the methods of one path, for Allow (httplib answers HEAD wherever GET is).
std::string allowed(const std::map<std::string, Router::Handler>& by_method) {
  std::string allow;
  for (const auto& [method, handler] : by_method) {
    allow += (allow.empty() ? "" : ", ") + method;
    if (method == "GET") allow += ", HEAD";
  }
  return allow;
}

void send_not_allowed(const httplib::Request& req, httplib::Response& res,
                      const std::string& allow) {
  res.set_header("Allow", allow);
  send_error(res, 405, "method_not_allowed",
             req.method + " is not allowed here; allowed: " + allow);
}

// What a refusal for want of a slot says: "token T has N <what> <doing> already (<share> of
// [api] threads); send this one once one of them <done>".
struct SlotWords {
  const char* what;
  const char* doing;
  const char* share;
  const char* done;
};

ApiError no_slot(httplib::Response& res, KeyedSlots& slots, const std::string& token,
                 const SlotWords& words) {
  res.set_header("Retry-After", "1");
  const std::string until = std::string("; send this one once one of them ") + words.done;
  return ApiError(429, "rate_limited",
                  slots.all_taken()
                      ? std::to_string(slots.total()) + " " + words.what + " are " + words.doing +
                            " already (half of [api] threads, all tokens together)" + until
                      : "token " + token + " has " + std::to_string(slots.per_key()) + " " +
                            words.what + " " + words.doing + " already (" + words.share +
                            " of [api] threads)" + until);
}

}  // namespace

void Router::add(const std::string& method, const std::string& pattern, Handler handler) {
  const RouteAccess* access = route_access(method, pattern);
  if (access == nullptr)
    throw std::logic_error("route " + method + " " + pattern + " has no scope in access.cpp");
  routes_.push_back({method, pattern});
  if (!handlers_.contains(pattern)) patterns_.push_back(pattern);
  paths_[pattern] = access->path;
  const std::string route = method + " " + std::string(access->path);
  handlers_[pattern][method] = [&gate = gate_, &bulk = bulk_, metrics = metrics_, access, route,
                                changes = method != "GET", handler = std::move(handler)](
                                   const httplib::Request& req, httplib::Response& res) {
    const auto started = std::chrono::steady_clock::now();
    std::string token;  // counted under its name once known
    try {
      Gate::Admitted admitted = gate.authorize(req, res, *access, &token);
      gate.take_rate(admitted, res);
      std::shared_ptr<void> slot;  // a bulk route's, held until answered
      if (access->bulk && !admitted.token.empty() && !(slot = bulk.take(admitted.token)))
        throw no_slot(res, bulk, admitted.token,
                      {"batches and bulk changes", "running", "a quarter", "is answered"});
      const Caller caller{std::move(admitted.token), route, changes, std::move(admitted.token_hash),
                          admitted.scopes};
      const CallerScope scope(caller);
      check_query_text(req);
      handler(req, res);
    } catch (...) {
      send_exception(req, res, std::current_exception());
    }
    if (metrics != nullptr && !token.empty())
      metrics->observe_token(token, res.status, std::chrono::steady_clock::now() - started);
  };
}

const std::string* Router::pattern_of(const std::string& target) const {
  // The path as routed: still percent-encoded (request_head.hpp).
  const std::string path = target.substr(0, target.find('?'));
  for (const auto& [pattern, regex] : matchers_) {
    if (std::regex_match(path, regex)) return &pattern;
  }
  return nullptr;
}

bool Router::admits_body(const httplib::Request& req, httplib::Response& res, KeyedSlots& uploads) {
  const auto started = std::chrono::steady_clock::now();
  const auto refuse = [&] {
    if (metrics_ != nullptr) metrics_->observe_unrouted(req.method, res.status);
    return false;
  };
  if (const std::string* pattern = pattern_of(req.target)) {
    const auto& by_method = handlers_.at(*pattern);
    if (!by_method.contains(req.method)) {
      send_not_allowed(req, res, allowed(by_method));
      return refuse();
    }
    std::string token;  // counted under its name once known
    try {
      const Gate::Admitted admitted =
          gate_.authorize(req, res, *route_access(req.method, *pattern), &token);
      // Without auth only this machine gets here: there is no token to count by.
      if (!admitted.token.empty()) {
        auto slot = uploads.take(admitted.token);
        if (!slot)
          throw no_slot(res, uploads, admitted.token,
                        {"request bodies", "arriving", "half", "is in"});
        HttpServer::hold_for_request(std::move(slot));
      }
      return true;
    } catch (...) {
      send_exception(req, res, std::current_exception());
      if (metrics_ == nullptr) return false;
      if (const auto it = measures_.find(req.method + " " + paths_.at(*pattern));
          it != measures_.end())
        metrics_->observe_refused(*it->second, res.status);
      if (!token.empty())
        metrics_->observe_token(token, res.status, std::chrono::steady_clock::now() - started);
      return false;
    }
  }
  send_error(res, 404, "not_found", "no such route");
  return refuse();
}

Router::Handler Router::measured(const std::string& method, const std::string& path, bool timed,
                                 Handler handler) {
  if (metrics_ == nullptr) return handler;
  RequestMetrics::Route* route = &metrics_->route(method, path, timed);
  measures_[method + " " + path] = route;
  return [handler = std::move(handler), metrics = metrics_, route](const httplib::Request& req,
                                                                   httplib::Response& res) {
    const auto started = std::chrono::steady_clock::now();
    handler(req, res);
    metrics->observe(*route, res.status, std::chrono::steady_clock::now() - started);
  };
}

void Router::finish() {
  // Registered pattern by pattern in the order added, each with its 405s, because httplib
  // takes the first match: /v1/reminders/batch must answer 405 to GET before the
  // /v1/reminders/{id} pattern can take it as an id.
  for (const auto& pattern : patterns_) {
    const auto& by_method = handlers_.at(pattern);
    const std::string& path = paths_.at(pattern);
    const std::string allow = allowed(by_method);
    matchers_.emplace_back(pattern, std::regex(pattern));
    for (const auto& method : kRouteMethods) {
      const auto it = by_method.find(method);
      if (it != by_method.end()) {
        register_method(server_, method, pattern, measured(method, path, true, it->second));
        continue;
      }
      register_method(server_, method, pattern,
                      measured(method, path, false,
                               [allow](const httplib::Request& req, httplib::Response& res) {
                                 send_not_allowed(req, res, allow);
                               }));
    }
  }
  // Answers httplib makes by itself (unknown route, body too large, unreadable request) get
  // the same JSON error body as ours; answers that already have a body are left alone.
  // An error without a body is one no route answered: counted here, once.
  const httplib::Server::HandlerWithResponse on_error =
      [this, metrics = metrics_, max_body = max_body_bytes_](const httplib::Request& req,
                                                             httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        // A method no route is registered for (OPTIONS, TRACE, PROPFIND, get): httplib answers
        // 404, or 400 as if the request could not be read, for one it does not know.
        if (!is_route_method(req.method) && has_readable_request_line(req)) {
          if (req.method == "OPTIONS" && req.target == "*") {
            // The server as a whole (RFC 9110 section 9.3.7): what it takes, with no body.
            res.status = 204;
            res.set_header("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE");
          } else if (const std::string* pattern = pattern_of(req.target)) {
            send_not_allowed(req, res, allowed(handlers_.at(*pattern)));
          } else {
            send_error(res, 404, "not_found", "no such route");
          }
          if (metrics != nullptr) metrics->observe_unrouted(req.method, res.status);
          return httplib::Server::HandlerResponse::Handled;
        }
        if (metrics != nullptr) metrics->observe_unrouted(req.method, res.status);
        switch (res.status) {
          case 404:
            send_error(res, 404, "not_found", "no such route");
            break;
          case 408:
            send_error(res, 408, "request_timeout",
                       "the request did not arrive in time (request_timeout_ms, and a minimum "
                       "rate for its body)");
            break;
          case 413:
            send_error(res, 413, "payload_too_large",
                       max_body == 0 ? std::string("the request body is larger than allowed")
                                     : "the request body is over " + std::to_string(max_body) +
                                           " bytes ([api] max_body_bytes)",
                       "body");
            break;
          case 414:
            send_error(res, 414, "uri_too_long",
                       "the request line is over 8 KiB: send long values in a body");
            break;
          case 415:
            if (has_multipart_type(req)) {
              send_error(res, 415, "unsupported_media_type",
                         "Content-Type: a multipart body is not read; send a JSON object "
                         "(application/json)",
                         "Content-Type");
              break;
            }
            send_error(res, 415, "unsupported_encoding",
                       "Content-Encoding: request bodies are read as sent, never decompressed; "
                       "send the JSON itself",
                       "Content-Encoding");
            break;
          default:
            if (request_timed_out()) {
              // Its body stopped arriving before its deadline.
              send_error(res, 408, "request_timeout",
                         "the request did not arrive in time (request_timeout_ms, and a minimum "
                         "rate for its body)");
            } else if (has_unreadable_length(req)) {
              send_error(res, 400, "invalid_value",
                         "Content-Length: must be one whole number of bytes", "Content-Length");
            } else if (has_unreadable_transfer_encoding(req)) {
              send_error(res, 400, "invalid_value",
                         "Transfer-Encoding: only chunked is read, and never with Content-Length",
                         "Transfer-Encoding");
            } else if (req.has_header("Transfer-Encoding")) {
              // Its chunks (http_server.cpp): where the next request starts is unknown.
              send_error(res, res.status, "bad_request",
                         "Transfer-Encoding: the chunked body could not be read (each chunk is "
                         "its size in hex, CRLF, its bytes, CRLF; the last is 0 and a blank line)",
                         "Transfer-Encoding");
            } else if (!has_readable_request_line(req)) {
              send_error(res, res.status, "bad_request",
                         "the request line could not be read: it is a method, a path and "
                         "HTTP/1.1 (or HTTP/1.0), separated by single spaces, ending in CRLF");
            } else if (!has_read_head(req)) {
              send_error(res, res.status, "bad_request",
                         "the request line or a header line could not be read (a method, a "
                         "path and HTTP/1.1 separated by single spaces; a header line is at "
                         "most 8 KiB)");
            } else {
              send_error(res, res.status, "bad_request",
                         "the request line, a header or the chunked body could not be read");
            }
        }
        return httplib::Server::HandlerResponse::Handled;
      };
  server_.set_error_handler(on_error);
  // What escapes a handler (none should: each answers its own errors) is answered like any
  // unexpected error, with a request id: httplib's own 500 would name the exception in an
  // EXCEPTION_WHAT header.
  server_.set_exception_handler([metrics = metrics_](const httplib::Request& req,
                                                     httplib::Response& res,
                                                     std::exception_ptr error) {
    send_exception(req, res, std::move(error));
    if (metrics != nullptr) metrics->observe_unrouted(req.method, res.status);
  });
}

}  // namespace nudge::api
