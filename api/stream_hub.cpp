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

// The last piece of a stream: `message`, then the chunk that ends the answer.
Piece last_piece(const std::string& message) {
  return piece(chunk(message) + kLastChunk);
}

std::string revoked_message(const std::string& token) {
  return notice_message(
      "revoked", error_json("unauthorized", "token " + token +
                                                " was revoked, deleted or lost scope read: this "
                                                "stream ends (new requests with it are refused)"));
}

std::string log_reset_message(Position from, Position end) {
  return notice_message(
      "gone", error_json("log_reset", "the change log went back from " + event_id(from) + " to " +
                                          event_id(end) +
                                          " (the database was restored or rebuilt): what was "
                                          "sent may be gone; this stream ends: reload, and "
                                          "reconnect without Last-Event-ID"));
}

std::string lagged_message(std::size_t limit, Position last_sent) {
  return "id: " + event_id(last_sent) + "\n" +
         notice_message("lagged", error_json("lagged", "this client fell behind by more than " +
                                                           std::to_string(limit) +
                                                           " bytes ([api] stream_buffer_bytes): "
                                                           "reconnect with Last-Event-ID (this "
                                                           "event's id) to catch up from history"));
}

const Piece& stalled_piece() {
  static const Piece kStalled = piece(chunk(notice_message(
      "stalled", error_json("unavailable",
                            "the change log cannot be read (the database is unreachable): "
                            "nothing is streamed until it is back, then the changes made "
                            "meanwhile follow, after event resumed"))));
  return kStalled;
}

const Piece& resumed_piece() {
  static const Piece kResumed = piece(
      chunk(notice_message("resumed", R"({"message":"the change log is read again: the changes )"
                                      R"(made while it could not be read follow"})")));
  return kResumed;
}

}  // namespace

StreamSubscriber::StreamSubscriber(StreamHub& hub, StreamFilter filter, StreamOwner owner)
    : hub_(hub), filter_(std::move(filter)), owner_(std::move(owner)) {}

StreamSubscriber::~StreamSubscriber() {
  if (held_) {
    std::lock_guard lock(hub_.tokens_mutex_);
    const auto it = hub_.by_token_.find(owner_.token_hash);
    std::erase(it->second, this);
    if (it->second.empty()) hub_.by_token_.erase(it);
  }
  hub_.open_.fetch_sub(1, std::memory_order_relaxed);
}

bool StreamSubscriber::ended() {
  std::lock_guard lock(mutex_);
  return ended_;
}

void StreamSubscriber::end_with(Piece last) {
  std::lock_guard lock(mutex_);
  if (ended_) return;
  std::vector<Piece>().swap(queued_);
  queued_bytes_ = last->size();
  queued_.push_back(std::move(last));
  ended_ = true;
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
  queued_.push_back(last_piece(lagged_message(limit, taken_through_)));
  queued_bytes_ = queued_.back()->size();
  ended_ = true;
}

bool StreamHub::begin_catch_up() {
  std::size_t now = catching_up_.load();
  do {
    if (now >= settings_.max_catching_up) return false;
  } while (!catching_up_.compare_exchange_weak(now, now + 1));
  return true;
}

StreamHub::Reservation StreamHub::reserve(const StreamFilter& filter, StreamOwner owner) {
  std::lock_guard lock(tokens_mutex_);
  const bool with_token = !owner.token_hash.empty();
  if (with_token) {
    const auto it = by_token_.find(owner.token_hash);
    if (it != by_token_.end() && it->second.size() >= settings_.max_streams_per_token)
      return {nullptr, true};
  }
  std::size_t open = open_.load();
  do {
    if (open >= settings_.max_streams) return {};
  } while (!open_.compare_exchange_weak(open, open + 1));
  auto subscriber = std::make_shared<StreamSubscriber>(*this, filter, std::move(owner));
  if (with_token) {
    by_token_[subscriber->owner_.token_hash].push_back(subscriber.get());
    subscriber->held_ = true;
  }
  return {std::move(subscriber), false};
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
  if (stalled_) subscriber->queue(stalled_piece(), settings_.buffer_bytes, nullptr);
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

std::size_t StreamHub::restart_at(Position end) {
  std::size_t ended = 0;
  {
    std::lock_guard lock(mutex_);
    const Piece last = last_piece(log_reset_message(position_.value_or(end), end));
    for_each_subscriber([&](StreamSubscriber& s) {
      s.end_with(last);
      ++ended;
    });
    position_ = end;
  }
  if (ended > 0 && wake_) wake_();
  return ended;
}

void StreamHub::set_stalled(bool stalled) {
  {
    std::lock_guard lock(mutex_);
    if (stalled_ == stalled) return;
    stalled_ = stalled;
    const Piece& notice = stalled ? stalled_piece() : resumed_piece();
    for_each_subscriber(
        [&](StreamSubscriber& s) { s.queue(notice, settings_.buffer_bytes, nullptr); });
  }
  if (wake_) wake_();
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

std::vector<std::string> StreamHub::stream_tokens() const {
  std::lock_guard lock(tokens_mutex_);
  std::vector<std::string> hashes;
  hashes.reserve(by_token_.size());
  for (const auto& [hash, subscribers] : by_token_) hashes.push_back(hash);
  return hashes;
}

std::size_t StreamHub::end_streams_of(const std::vector<std::string>& token_hashes) {
  std::size_t ended = 0;
  {
    std::lock_guard lock(tokens_mutex_);
    for (const auto& hash : token_hashes) {
      const auto it = by_token_.find(hash);
      if (it == by_token_.end()) continue;
      // Every stream of a token is ended with the same message, naming the token.
      const Piece last = last_piece(revoked_message(it->second.front()->owner_.token));
      for (StreamSubscriber* s : it->second) {
        s->end_with(last);
        ++ended;
      }
    }
  }
  if (ended > 0 && wake_) wake_();
  return ended;
}

}  // namespace nudge::api
