#pragma once
// What nudge-api settles from a request's head before httplib reads its body and routes it
// (httplib's pre-routing handler):
// - a declared body length that cannot be read (400) or is over max_body_bytes (413) is refused
//   at once: httplib would first wait for that many bytes, to skip them;
// - a Transfer-Encoding other than chunked alone, or with a Content-Length, is refused (400;
//   the connection closes, request_framing.hpp): httplib would read such a body until the client
//   closes, without a limit. A chunked body has been decoded already (http_server.cpp);
// - a compressed body (Content-Encoding other than identity) is refused (415): httplib would
//   inflate it without a limit, and 200 KB of gzip held 200 MB;
// - a multipart body (Content-Type multipart/...) is refused (415): httplib would file a
//   multipart/form-data body under its files, leaving the body empty, so that a route taking
//   none would act and one needing one would call it missing;
// - a form-encoded body (what curl -d sends, JSON included) is read like any other, up to
//   max_body_bytes: httplib would refuse one over 8 KiB and file it under the query parameters;
// - the path is routed as it was sent, still percent-encoded, so that an encoded '/' (%2F) stays
//   inside its segment: routes decode each segment (path_param, route_support.hpp).
// A refusal sets only the status; the router's error handler writes the body and counts it.

#include <httplib.h>

#include <cstddef>

namespace nudge::api {

httplib::Server::HandlerResponse settle_request_head(httplib::Request& req, httplib::Response& res,
                                                     std::size_t max_body_bytes);

// Leaves Accept-Encoding saying gzip when the request takes gzip (listed with a q above 0, or
// not listed while * is), and removes it otherwise: httplib compresses an answer with brotli at
// its highest quality (11) whenever the client lists br, as every browser does (half a second of
// CPU for a 57 KB answer, 28 s for the docs' 1.7 MB script), and with gzip whenever "gzip"
// appears in the header, gzip;q=0 included. Called for every request httplib has read the head of.
void settle_accept_encoding(httplib::Request& req);
// A Connection header that lists close, in any case ("Close", "keep-alive, close"), as the one
// exact "close" httplib answers with; true when it does.
bool settle_connection(httplib::Request& req);
// An absolute-form target (`GET http://host/path`, what a client sends a proxy; RFC 9112 section
// 3.2.2: a server must take it) as its origin form, routed by its path, with its authority as
// the Host; any other target is left as it is. First, before anything reads the path.
void settle_absolute_form(httplib::Request& req);
// Answers are whole: a Range is ignored (RFC 9110 allows it), where httplib cut every answer
// to it, errors and creates included, under a 200.
void ignore_range(httplib::Request& req);

// The request declares its body's length in a way that cannot be read: not one Content-Length
// of digits.
bool has_unreadable_length(const httplib::Request& req);
// httplib split its request line into a method (a token: any, known or not), a path (or *)
// and HTTP/1.1 or HTTP/1.0. A request line httplib refuses (an unknown method) still has these.
bool has_readable_request_line(const httplib::Request& req);
// httplib read its request line and every header line: it refuses a header line over 8 KiB (or
// a request line of more than three parts), and then has not read the rest of the head.
bool has_read_head(const httplib::Request& req);
// Its Content-Type is multipart/... (any case).
bool has_multipart_type(const httplib::Request& req);
// Its Transfer-Encoding is not one "chunked" without Content-Length.
bool has_unreadable_transfer_encoding(const httplib::Request& req);

}  // namespace nudge::api
