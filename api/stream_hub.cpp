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

Piece piece(std::string bytes) {
  return std::make_shared<const std::string>(std::move(bytes));
}

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

bool StreamSubscriber::take(std::vector<Piece>& out) {
  std::lock_guard lock(mutex_);
  // The loop hands over an empty list: the queue's pieces move instead of being copied.
  if (out.empty()) {
    out.swap(queued_);
  } else {
    out.insert(out.end(), queued_.begin(), queued_.end());
  }
  queued_.clear();
  queued_bytes_ = 0;
  if (!ended_) taken_through_ = queued_through_;
  return !ended_;
}

void StreamSubscriber::queue(const Piece& chunks, std::size_t limit, const Position* position) {
  std::lock_guard lock(mutex_);
  if (ended_) return;
  // Over the limit only once more comes while the queue already holds it: a batch larger than
  // the limit still goes to a client that keeps up.
  if (queued_bytes_ <= limit) {
    queued_.push_back(chunks);
    queued_bytes_ += chunks->size();
    if (position) queued_through_ = *position;
    return;
  }
  // What is queued is dropped, and the client told so: it resumes after what the loop took.
  std::vector<Piece>().swap(queued_);
  queued_.push_back(piece(lagged_chunk(limit, taken_through_) + kLastChunk));
  queued_bytes_ = queued_.back()->size();
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

void StreamHub::publish(Page page) {
  const std::vector<Change>& changes = page.changes;
  {
    std::lock_guard lock(mutex_);
    if (!subscribers_.empty() && !changes.empty()) {
      // A client gets what it wants of the page in one piece, under one lock: the page's own
      // buffer, shared, when it wants every change, else its own selection.
      const Piece whole = piece(std::move(page.text));
      const std::string& text = *whole;
      for_each_subscriber([&](StreamSubscriber& s) {
        bool every = true;
        const Position* last = nullptr;
        std::string selection;
        for (std::size_t i = 0; i < changes.size(); ++i) {
          const bool wanted = changes[i].position > s.sent_ && s.filter_.matches(changes[i]);
          if (wanted) {
            last = &changes[i].position;
            if (!every)
              selection.append(text, changes[i].chunk, changes[i].end + 2 - changes[i].chunk);
          } else if (every) {
            every = false;
            selection.assign(text, 0, changes[i].chunk);
          }
        }
        if (!last) return;
        s.queue(every ? whole : piece(std::move(selection)), settings_.buffer_bytes, last);
      });
    }
    position_ = page.end;
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
  static const Piece kPing = piece(chunk(": ping\n\n"));
  {
    std::lock_guard lock(mutex_);
    for_each_subscriber(
        [&](StreamSubscriber& s) { s.queue(kPing, settings_.buffer_bytes, nullptr); });
  }
  if (wake_) wake_();
}

}  // namespace nudge::api
