#pragma once
// The fan-out of the live stream: the one change poller of the process publishes each page of
// rendered changes here (every message already an HTTP chunk, end to end in one buffer), and
// every joined client whose filter matches gets it queued: the page's buffer itself, shared,
// when the client wants all of it (no filter, the usual case), else its own selection. The
// connection loop takes a client's queue when it can write to the client. A client whose queue is
// still over the buffer size when more comes (a slow reader; so at most the buffer plus one batch
// is held for it) gets a `lagged` event in place of what was queued and its stream ends: its
// EventSource reconnects with Last-Event-ID and catches up from history. The `lagged` event carries
// the id of the last change the client gets before it, so that EventSource resumes from there even
// if it had none. Nothing is dropped silently.
//
// Each stream opened with a token is held under that token (its SHA-256), at most
// max_streams_per_token of them, so that one token cannot take every place. TokenWatch, which
// hears of revoked and changed tokens and re-checks the streams' tokens every token_cache_seconds,
// ends those of a token that no longer grants read (revoked, deleted, or without scope read): what
// was queued for them is dropped, they get a `revoked` event, and the connection closes.

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "connection_loop.hpp"
#include "stream_changes.hpp"
#include "stream_filter.hpp"

namespace nudge::api {

class StreamHub;

// The token a stream was opened with: its name and SHA-256 (hex); both empty without auth.
struct StreamOwner {
  std::string token;
  std::string token_hash;
};

// One client's stream: what is queued for it, taken by the connection loop.
class StreamSubscriber : public Outbox {
 public:
  StreamSubscriber(StreamHub& hub, StreamFilter filter, StreamOwner owner);
  ~StreamSubscriber() override;
  StreamSubscriber(const StreamSubscriber&) = delete;
  StreamSubscriber& operator=(const StreamSubscriber&) = delete;

  const StreamFilter& filter() const { return filter_; }
  bool take(std::vector<Piece>& out) override;
  // The stream was ended (lagged, or its token revoked): nothing more is queued for it.
  bool ended();

 private:
  friend class StreamHub;
  // Under the hub's lock: queues `chunks` (changes through `position`, if they are changes)
  // unless the queue already outgrew `limit`: then the client is lagged.
  void queue(const Piece& chunks, std::size_t limit, const Position* position);
  // Drops what is queued for the client and ends its stream with `last` (HTTP chunks, the final
  // one included).
  void end_with(Piece last);

  StreamHub& hub_;
  const StreamFilter filter_;
  const StreamOwner owner_;
  bool held_ = false;  // listed under its token in the hub
  Position sent_;      // changes at or before it were sent by the catch-up
  std::mutex mutex_;
  std::vector<Piece> queued_;
  std::size_t queued_bytes_ = 0;
  Position queued_through_;  // the last change queued
  Position taken_through_;   // the last change the loop took: it is sent before anything else
  bool ended_ = false;
};

class StreamHub {
 public:
  struct Settings {
    std::size_t max_streams = 1000;
    std::size_t max_streams_per_token = 16;  // of streams opened with a token
    std::size_t buffer_bytes = 8 << 20;      // per client, before it is lagged
    // Streams catching up from history at once: each holds a request thread and reads a page at
    // a time with a pooled connection until it joins (half of [api] threads).
    std::size_t max_catching_up = 8;
  };

  // What reserve() gives: a subscriber, or nullptr and why not.
  struct Reservation {
    std::shared_ptr<StreamSubscriber> subscriber;
    bool token_full = false;  // the owner's token holds max_streams_per_token (else: all taken)
  };

  explicit StreamHub(Settings settings) : settings_(settings) {}

  // How the connection loop is told that queues grew (set once, before any publish).
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

  // A place among max_streams (and, for a client with a token, among its token's
  // max_streams_per_token) for a new client, or none when they are taken. The place is held until
  // the returned subscriber is destroyed.
  Reservation reserve(const StreamFilter& filter, StreamOwner owner);
  // The client, having been sent every change up to `sent`, gets every change after it from
  // now on: true when nothing after `sent` was published yet; false when it must catch up
  // further first (then call again).
  bool join(const std::shared_ptr<StreamSubscriber>& subscriber, Position sent);

  // The position published up to; nullopt until the poller first read the log.
  std::optional<Position> position() const;
  // Joined clients (the poller renders changes only when there are some).
  std::size_t joined() const;
  std::size_t max_streams_per_token() const { return settings_.max_streams_per_token; }
  // Clients holding a place (joined or catching up), for metrics.
  std::size_t open_streams() const { return open_.load(std::memory_order_relaxed); }
  // A place among the max_catching_up streams catching up from history, or false when they are
  // taken; give it back with end_catch_up().
  bool begin_catch_up();
  void end_catch_up() { catching_up_.fetch_sub(1, std::memory_order_relaxed); }
  std::size_t max_catching_up() const { return settings_.max_catching_up; }

  // From the poller: the page's changes (in order), then the position is the page's end.
  void publish(Page page);
  // From the poller, with no change rendered: the position is `end`, unless a client joined
  // meanwhile (then false: the changes up to `end` must be published to it).
  bool advance(Position end);
  // From the poller, when the log ends before the position (the database was restored or
  // rebuilt behind this process): every joined stream ends with a `gone` event (code log_reset),
  // since what it was sent may be gone, and the position is `end`. Returns how many ended.
  std::size_t restart_at(Position end);
  // A heartbeat comment to every joined client.
  void ping();
  // From the poller: whether the change log cannot be read (the database is unreachable). Each
  // joined client is told when that changes, with `event: stalled` (data: Error, code
  // unavailable) then `event: resumed`, and one that joins while it lasts is told at once: a
  // stream open through an outage would otherwise read as live, pings and all.
  void set_stalled(bool stalled);

  // The SHA-256 (hex) of each token that holds a stream, once each.
  std::vector<std::string> stream_tokens() const;
  // Ends every stream (joined or catching up) of the tokens with these hashes, each with a
  // `revoked` event; returns how many were ended.
  std::size_t end_streams_of(const std::vector<std::string>& token_hashes);

 private:
  friend class StreamSubscriber;

  // Calls `each` on every live subscriber, forgetting those gone; under mutex_.
  template <typename Each>
  void for_each_subscriber(Each&& each);

  const Settings settings_;
  std::function<void()> wake_;
  mutable std::mutex mutex_;
  std::optional<Position> position_;
  bool stalled_ = false;
  std::vector<std::weak_ptr<StreamSubscriber>> subscribers_;
  std::atomic<std::size_t> open_{0};
  std::atomic<std::size_t> catching_up_{0};
  // Streams by the hash of their token: a subscriber is listed from reserve() until it is
  // destroyed. Its own lock, taken after mutex_ (a subscriber may be destroyed under mutex_), never
  // before it.
  mutable std::mutex tokens_mutex_;
  std::unordered_map<std::string, std::vector<StreamSubscriber*>> by_token_;
};

}  // namespace nudge::api
