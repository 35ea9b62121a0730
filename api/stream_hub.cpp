#include "stream_hub.hpp"

#include <cstdio>

#include "errors.hpp"

namespace nudge::api {
namespace {

// One HTTP/1.1 chunk holding `message`.
std::string chunk(const std::string& message) {
  char size[20];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", message.size());
  std::string out(size, static_cast<std::size_t>(n));
  out += message;
  out += "\r\n";
  return out;
}

const std::string kLastChunk = "0\r\n\r\n";

std::string lagged_chunk(std::size_t limit, Position last_sent) {
  return chunk(
      "id: " + event_id(last_sent) + "\n" +
      notice_message("lagged", error_json("lagged", "this client fell behind by more than " +
                                                        std::to_string(limit) +
                                                        " bytes ([api] stream_buffer_bytes): "
                                                        "reconnect with Last-Event-ID (this "
                                                        "event's id) to catch up from history")));
}

}  // namespace

StreamSubscriber::StreamSubscriber(StreamHub& hub, StreamFilter filter)
    : hub_(hub), filter_(std::move(filter)) {}

StreamSubscriber::~StreamSubscriber() {
  hub_.open_.fetch_sub(1, std::memory_order_relaxed);
}

bool StreamSubscriber::take(std::string& out) {
  std::lock_guard lock(mutex_);
  // The loop hands over an empty buffer: the queue's bytes move instead of being copied.
  if (out.empty()) {
    out.swap(queued_);
  } else {
    out += queued_;
  }
  queued_.clear();
  if (!ended_) taken_through_ = queued_through_;
  return !ended_;
}

void StreamSubscriber::queue(const std::string& chunks, std::size_t limit,
                             const Position* position) {
  std::lock_guard lock(mutex_);
  if (ended_) return;
  // Over the limit only once more comes while the queue already holds it: a batch larger than
  // the limit still goes to a client that keeps up.
  if (queued_.size() <= limit) {
    queued_ += chunks;
    if (position) queued_through_ = *position;
    return;
  }
  // What is queued is dropped, and the client told so: it resumes after what the loop took.
  std::string().swap(queued_);
  queued_ = lagged_chunk(limit, taken_through_) + kLastChunk;
  ended_ = true;
}

std::shared_ptr<StreamSubscriber> StreamHub::reserve(const StreamFilter& filter) {
  std::size_t open = open_.load();
  do {
    if (open >= settings_.max_streams) return nullptr;
  } while (!open_.compare_exchange_weak(open, open + 1));
  return std::make_shared<StreamSubscriber>(*this, filter);
}

bool StreamHub::join(const std::shared_ptr<StreamSubscriber>& subscriber, Position sent) {
  std::lock_guard lock(mutex_);
  if (!position_ || *position_ > sent) return false;
  subscriber->sent_ = sent;
  {
    std::lock_guard queue_lock(subscriber->mutex_);
    subscriber->queued_through_ = subscriber->taken_through_ = sent;
  }
  subscribers_.push_back(subscriber);
  return true;
}

std::optional<Position> StreamHub::position() const {
  std::lock_guard lock(mutex_);
  return position_;
}

std::size_t StreamHub::joined() const {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

template <typename Each>
void StreamHub::for_each_subscriber(Each&& each) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < subscribers_.size(); ++i) {
    if (auto s = subscribers_[i].lock()) {
      each(*s);
      // Not onto itself: a weak_ptr moved onto itself ends up empty.
      if (kept != i) subscribers_[kept] = std::move(subscribers_[i]);
      ++kept;
    }
  }
  subscribers_.resize(kept);
}

void StreamHub::publish(const std::vector<Change>& changes, Position end) {
  {
    std::lock_guard lock(mutex_);
    if (!subscribers_.empty() && !changes.empty()) {
      // Each change encoded once, the page's chunks end to end: chunk i is the bytes from
      // starts[i] to starts[i + 1].
      std::string page;
      std::vector<std::size_t> starts{0};
      starts.reserve(changes.size() + 1);
      for (const auto& c : changes) {
        page += chunk(c.message);
        starts.push_back(page.size());
      }
      // A client gets what it wants of the page in one piece, under one lock: the whole page
      // when it wants every change (no filter, the usual case), else its own selection.
      std::string selection;
      for_each_subscriber([&](StreamSubscriber& s) {
        bool every = true;
        const Position* last = nullptr;
        selection.clear();
        for (std::size_t i = 0; i < changes.size(); ++i) {
          const bool wanted = changes[i].position > s.sent_ && s.filter_.matches(changes[i]);
          if (wanted) {
            last = &changes[i].position;
            if (!every) selection.append(page, starts[i], starts[i + 1] - starts[i]);
          } else if (every) {
            every = false;
            selection.assign(page, 0, starts[i]);
          }
        }
        if (last) s.queue(every ? page : selection, settings_.buffer_bytes, last);
      });
    }
    position_ = end;
  }
  if (!changes.empty() && wake_) wake_();
}

bool StreamHub::advance(Position end) {
  std::lock_guard lock(mutex_);
  if (!subscribers_.empty()) return false;
  position_ = end;
  return true;
}

void StreamHub::ping() {
  static const std::string kPing = chunk(": ping\n\n");
  {
    std::lock_guard lock(mutex_);
    for_each_subscriber(
        [&](StreamSubscriber& s) { s.queue(kPing, settings_.buffer_bytes, nullptr); });
  }
  if (wake_) wake_();
}

}  // namespace nudge::api
