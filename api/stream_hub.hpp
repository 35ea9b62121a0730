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

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "connection_loop.hpp"
#include "stream_changes.hpp"
#include "stream_filter.hpp"

namespace nudge::api {

class StreamHub;

// One client's stream: what is queued for it, taken by the connection loop.
class StreamSubscriber : public Outbox {
 public:
  StreamSubscriber(StreamHub& hub, StreamFilter filter);
  ~StreamSubscriber() override;
  StreamSubscriber(const StreamSubscriber&) = delete;
  StreamSubscriber& operator=(const StreamSubscriber&) = delete;

  const StreamFilter& filter() const { return filter_; }
  bool take(std::vector<Piece>& out) override;

 private:
  friend class StreamHub;
  // Under the hub's lock: queues `chunks` (changes through `position`, if they are changes)
  // unless the queue already outgrew `limit`: then the client is lagged.
  void queue(const Piece& chunks, std::size_t limit, const Position* position);

  StreamHub& hub_;
  const StreamFilter filter_;
  Position sent_;  // changes at or before it were sent by the catch-up
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
    std::size_t buffer_bytes = 8 << 20;  // per client, before it is lagged
  };

  explicit StreamHub(Settings settings) : settings_(settings) {}

  // How the connection loop is told that queues grew (set once, before any publish).
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

  // A place among max_streams for a new client, or nullptr when they are taken. The place is
  // held until the returned subscriber is destroyed.
  std::shared_ptr<StreamSubscriber> reserve(const StreamFilter& filter);
  // The client, having been sent every change up to `sent`, gets every change after it from
  // now on: true when nothing after `sent` was published yet; false when it must catch up
  // further first (then call again).
  bool join(const std::shared_ptr<StreamSubscriber>& subscriber, Position sent);

  // The position published up to; nullopt until the poller first read the log.
  std::optional<Position> position() const;
  // Joined clients (the poller renders changes only when there are some).
  std::size_t joined() const;
  // Clients holding a place (joined or catching up), for metrics.
  std::size_t open_streams() const { return open_.load(std::memory_order_relaxed); }

  // From the poller: the page's changes (in order), then the position is the page's end.
  void publish(Page page);
  // From the poller, with no change rendered: the position is `end`, unless a client joined
  // meanwhile (then false: the changes up to `end` must be published to it).
  bool advance(Position end);
  // A heartbeat comment to every joined client.
  void ping();

 private:
  friend class StreamSubscriber;

  // Calls `each` on every live subscriber, forgetting those gone; under mutex_.
  template <typename Each>
  void for_each_subscriber(Each&& each);

  const Settings settings_;
  std::function<void()> wake_;
  mutable std::mutex mutex_;
  std::optional<Position> position_;
  std::vector<std::weak_ptr<StreamSubscriber>> subscribers_;
  std::atomic<std::size_t> open_{0};
};

}  // namespace nudge::api
