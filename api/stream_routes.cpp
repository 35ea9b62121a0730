// GET /v1/stream: the live stream of changes as Server-Sent Events. The request thread checks
// the request, sends the head and any catch-up from history (from Last-Event-ID, or the
// last_event_id parameter EventSource cannot set), then hands the connection to the loop as a
// stream that the StreamHub feeds; the thread goes back to serving requests.

#include <algorithm>
#include <thread>

#include "caller.hpp"
#include "errors.hpp"
#include "http_server.hpp"
#include "nudge/log.hpp"
#include "route_support.hpp"
#include "routes.hpp"

namespace nudge::api {
namespace {

using namespace std::chrono_literals;

constexpr int kCatchUpPage = 500;
// How long a catch-up waits for the log to reach the reader's position.
constexpr auto kCatchUpStall = 5s;
using Clock = std::chrono::steady_clock;
constexpr auto kStartWait = 5s;
// EventSource waits this long before it reconnects.
constexpr const char* kHello = "retry: 1000\n\n";
// Seconds a client refused a stream for now (all taken, or the log not read yet) waits.
constexpr const char* kRetryAfter = "5";

// What names where the client resumes: the Last-Event-ID header, else the last_event_id
// parameter.
std::string resume_field(const httplib::Request& req) {
  return req.has_header("Last-Event-ID") ? "Last-Event-ID" : "last_event_id";
}

// Where the client resumes.
std::optional<Position> resume_position(const httplib::Request& req) {
  const std::string field = resume_field(req);
  const std::optional<std::string> text = field == "Last-Event-ID"
                                              ? req.get_header_value("Last-Event-ID")
                                              : query(req, "last_event_id");
  if (!text) return std::nullopt;
  const auto position = parse_event_id(*text);
  if (!position) throw bad_field(field, "invalid_value", "is not an event id this server sent");
  return position;
}

// A resume from past the log's end names no change this server sent: the database was rebuilt
// or restored behind the client. Refused as a bad id, so that the client starts afresh (an
// EventSource refused reconnects without it) instead of hearing nothing until the log passes it.
// An id sent is at most after its change's batch, and the log's end never goes back: the end
// read here, after the id was sent, is past every id sent. The hub's position, before that end,
// spares the read for a usual resume.
void refuse_resume_past_the_end(const httplib::Request& req, ConnectionPool& pool,
                                const StreamHub& hub, Position resume) {
  if (resume <= *hub.position()) return;
  const Position end =
      after_batch(on_connection(pool, [](pqxx::nontransaction& tx) { return last_batch(tx); }));
  if (resume > end) {
    throw bad_field(resume_field(req), "invalid_value",
                    "is past the end of the change log (" + event_id(end) +
                        "): not an event id this server sent (was the database restored?); "
                        "reconnect without it");
  }
}

std::string gone_notice(Position from, Position pruned) {
  return notice_message(
      "gone", error_json("history_pruned",
                         "changes after " + event_id(from) + " up to " + event_id(pruned) +
                             " were pruned ([history] retention_days): what was shown may be "
                             "stale; the stream goes on from there"));
}

// Sends what the client missed after `from` (a position it resumes from, when `resumed`),
// page by page, until it can join the live stream where the catch-up ended. False when the
// client is gone.
bool catch_up_and_join(ConnectionPool& pool, StreamHub& hub,
                       const std::shared_ptr<StreamSubscriber>& subscriber, Position from,
                       bool resumed, httplib::DataSink& sink) {
  Position at = from;
  if (hub.join(subscriber, at)) return true;
  const Position pruned =
      resumed ? on_connection(pool, [](pqxx::nontransaction& tx) { return pruned_through(tx); })
              : Position{};
  if (at < pruned) {
    const std::string notice = gone_notice(at, pruned);
    if (!sink.write(notice.data(), notice.size())) return false;
    at = pruned;
  }
  auto stalled_since = Clock::now();
  // A stream whose token is revoked meanwhile stops catching up: the loop sends it its end.
  while (!subscriber->ended() && !hub.join(subscriber, at)) {
    const Page page = on_connection(pool, [&](pqxx::nontransaction& tx) {
      const std::int64_t through = last_batch(tx);
      return read_changes(tx, at, through, kCatchUpPage);
    });
    std::string out;
    for (const auto& c : page.changes) {
      if (subscriber->filter().matches(c)) out += page.message(c);
    }
    if (!out.empty() && !sink.write(out.data(), out.size())) return false;
    if (page.end > at) {
      at = page.end;
      stalled_since = Clock::now();
      continue;
    }
    // The hub is ahead of what this read could see only for the time its snapshot took; longer,
    // the log went back (the reader ends the streams then): this one ends rather than hold a
    // request thread, and at once when its client is gone.
    if (!sink.is_writable() || Clock::now() - stalled_since > kCatchUpStall) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

void add_stream_routes(Router& router, ConnectionPool& pool, StreamHub& hub) {
  router.add(
      "GET", "/v1/stream",
      [&pool, &hub, &gate = router.gate()](const httplib::Request& req, httplib::Response& res) {
        reject_unknown_params(req, {"reminder_id", "entity_type", "entity_id", "types",
                                    "last_event_id", "access_token"});
        const StreamFilter filter = parse_stream_filter(req);
        const auto resume = resume_position(req);
        // Just after start the poller may not have read the log yet.
        const auto started = std::chrono::steady_clock::now();
        while (!hub.position() && std::chrono::steady_clock::now() - started < kStartWait)
          std::this_thread::sleep_for(10ms);
        if (!hub.position()) {
          res.set_header("Retry-After", kRetryAfter);
          throw ApiError(503, "unavailable", "the change log cannot be read yet; try again");
        }
        if (resume) refuse_resume_past_the_end(req, pool, hub, *resume);
        // Without Last-Event-ID the stream starts now: after every change committed so far.
        const Position from =
            resume ? *resume : after_batch(on_connection(pool, [](pqxx::nontransaction& tx) {
              return advance_batches(tx);
            }));
        // A resume from behind the live position catches up on this request thread: at most
        // half the threads do at once, so that the others keep serving (16 clients resuming
        // over a long history once held every thread and connection for minutes).
        std::shared_ptr<void> catching_up;
        if (resume && *resume < *hub.position()) {
          if (!hub.begin_catch_up()) {
            res.set_header("Retry-After", kRetryAfter);
            throw ApiError(503, "unavailable",
                           std::to_string(hub.max_catching_up()) +
                               " streams are catching up from history (at most half of [api] "
                               "threads at once); try again in " +
                               std::string(kRetryAfter) + " s");
          }
          catching_up = std::shared_ptr<void>(nullptr, [&hub](void*) { hub.end_catch_up(); });
        }
        const Caller* caller = current_caller();
        auto [subscriber, token_full] = hub.reserve(
            filter, caller ? StreamOwner{caller->token, caller->token_hash} : StreamOwner{});
        if (!subscriber) {
          res.set_header("Retry-After", kRetryAfter);
          if (token_full) {
            throw ApiError(429, "too_many_streams",
                           "token " + caller->token + " holds " +
                               std::to_string(hub.max_streams_per_token()) +
                               " open streams ([api] max_streams_per_token); close one, or try "
                               "again in " +
                               std::string(kRetryAfter) + " s");
          }
          throw ApiError(503, "unavailable",
                         "too many open streams; try again in " + std::string(kRetryAfter) + " s");
        }
        // A revocation heard between the gate and the hub's list found no stream to end: once
        // listed, the token is admitted again (by the cache, which that revocation cleared, or
        // the database).
        if (caller && !caller->token_hash.empty())
          gate.check_again(res, caller->token_hash, Scope::read);
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [&pool, &hub, subscriber = subscriber, from, resumed = resume.has_value(), catching_up](
                std::size_t, httplib::DataSink& sink) mutable {
              try {
                const bool joined = sink.write(kHello, std::char_traits<char>::length(kHello)) &&
                                    catch_up_and_join(pool, hub, subscriber, from, resumed, sink);
                catching_up.reset();  // the place goes back once the history is sent
                if (joined) HttpServer::keep_as_stream(subscriber);
              } catch (const std::exception& e) {
                // The head is sent: the client is told, its stream ends, and it reconnects. (It
                // heard nothing, for good, where a grant was missing: explore30c F2.)
                log::warn("a stream could not catch up", {{"error", e.what()}});
                const std::string told = notice_message(
                    "stalled", error_json("unavailable",
                                          "this stream could not catch up from the change log "
                                          "(nudge-api's log says why): it ends; reconnect"));
                if (!sink.write(told.data(), told.size())) return false;  // the client is gone
                sink.done();
                return true;
              }
              return false;  // httplib's part of the answer ends; the loop's begins
            });
      });
}

}  // namespace nudge::api
