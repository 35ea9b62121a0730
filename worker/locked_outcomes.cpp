#include "locked_outcomes.hpp"

#include <pqxx/pqxx>
#include <set>

#include "nudge/database.hpp"
#include "nudge/log.hpp"

namespace nudge {

bool rows_locked(const std::exception& e) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  return sql != nullptr && sqlstate_of(*sql) == "55P03";
}

LockedOutcomes::LockedOutcomes(std::string owner, Record record, SetAside set_aside, Free free)
    : owner_(std::move(owner)),
      record_(std::move(record)),
      set_aside_(std::move(set_aside)),
      free_(std::move(free)) {}

void LockedOutcomes::add(std::vector<FireOutcome> outcomes, const std::exception& why) {
  const bool first = kept_.empty();
  kept_.insert(kept_.end(), std::make_move_iterator(outcomes.begin()),
               std::make_move_iterator(outcomes.end()));
  if (first) {
    since_ = Clock::now();
    wait_ = kFirstWait;
  }
  record_kept();
  if (first && !kept_.empty()) {
    log::warn(
        "ended attempts wait to be recorded: another transaction holds their reminders (an "
        "application's open transaction that stopped or changed them, or another worker's "
        "running their rules?); this loop goes on claiming and records them once it ends",
        {{"owner", owner_}, {"reminders", ids()}, {"error", primary_message(why.what())}});
  }
}

void LockedOutcomes::retry(bool force) {
  if (kept_.empty() || (!force && Clock::now() < next_)) return;
  record_kept();
  if (kept_.empty()) {
    log::info(
        "ended attempts recorded once their reminders were released",
        {{"owner", owner_},
         {"waited_ms",
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since_).count()}});
  }
}

std::optional<LockedOutcomes::Clock::time_point> LockedOutcomes::next_try() const {
  if (kept_.empty()) return std::nullopt;
  return next_;
}

std::vector<std::int64_t> LockedOutcomes::ids() const {
  std::vector<std::int64_t> out;
  out.reserve(kept_.size());
  for (const auto& o : kept_) out.push_back(o.id);
  return out;
}

void LockedOutcomes::record_kept() {
  std::vector<FireOutcome> still, free_now;
  try {
    const std::vector<std::int64_t> free_ids = free_(ids());
    const std::set<std::int64_t> free(free_ids.begin(), free_ids.end());
    for (auto& o : kept_) (free.contains(o.id) ? free_now : still).push_back(std::move(o));
    kept_.clear();
  } catch (...) {
    next_ = Clock::now() + wait_;
    throw;
  }
  // The free ones in one round trip: one by one, the 1,000 outcomes a 2-worker drain's loop kept
  // behind the other worker's claim took 1,000 transactions, about 0.5 s of the database's time.
  try {
    if (!free_now.empty()) record_(free_now);
  } catch (const std::exception& e) {
    if (rows_locked(e)) {  // one taken again since it was asked for: all wait for the next try
      still.insert(still.end(), std::make_move_iterator(free_now.begin()),
                   std::make_move_iterator(free_now.end()));
    } else {
      record_one_by_one(free_now, still);
    }
  }
  kept_ = std::move(still);
  next_ = Clock::now() + wait_;
  wait_ = std::min(wait_ * 2, kLongestWait);
}

void LockedOutcomes::record_one_by_one(std::vector<FireOutcome>& outcomes,
                                       std::vector<FireOutcome>& still) {
  std::size_t i = 0;
  try {
    for (; i < outcomes.size(); ++i) {
      try {
        record_({outcomes[i]});
      } catch (const std::exception& e) {
        if (rows_locked(e)) {
          still.push_back(std::move(outcomes[i]));
        } else if (!set_aside_(outcomes[i], e)) {
          throw;
        }
      }
    }
  } catch (...) {
    still.insert(still.end(), std::make_move_iterator(outcomes.begin() + static_cast<long>(i)),
                 std::make_move_iterator(outcomes.end()));
    kept_ = std::move(still);
    next_ = Clock::now() + wait_;
    throw;
  }
}

}  // namespace nudge
