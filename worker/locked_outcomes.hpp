#pragma once
// Ended attempts that a finish could not record because another transaction holds their
// reminders' rows: the finish locks them NOWAIT (55P03) rather than wait. An application's
// transaction that stopped a reminder under delivery (a flag, a cancel) holds its row until it
// ends; waiting for it held up every claim of the loop meanwhile, 58 s without a delivery in one
// run (explore19a #1). Kept here, those whose rows are free are tried again together, ever less
// often, while the loop goes on claiming.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "lifecycle.hpp"

namespace nudge {

// Whether `e` is a finish refused because another transaction holds a row it must lock.
bool rows_locked(const std::exception& e);

class LockedOutcomes {
 public:
  using Clock = std::chrono::steady_clock;
  // Records the outcomes in one transaction, or throws what the database answered.
  using Record = std::function<void(const std::vector<FireOutcome>&)>;
  // Deals with an outcome the database refused for another reason: true when that error is the
  // outcome's own and it was set aside (ClaimLoop::set_aside), false when it is the moment's (a
  // lost connection), which stops the tries.
  using SetAside = std::function<bool(const FireOutcome&, const std::exception&)>;

  // Those of the ids whose rows no other transaction holds now.
  using Free = std::function<std::vector<std::int64_t>(const std::vector<std::int64_t>&)>;

  LockedOutcomes(std::string owner, Record record, SetAside set_aside, Free free);

  // Records `outcomes`, keeping those whose rows are still held; the first of an episode is logged
  // with `why` (the error of the finish that found them held).
  void add(std::vector<FireOutcome> outcomes, const std::exception& why);
  // Tries those kept again when their time has come (`force`: now).
  void retry(bool force = false);
  bool empty() const { return kept_.empty(); }
  // When to try them again, if any are kept.
  std::optional<Clock::time_point> next_try() const;
  std::vector<std::int64_t> ids() const;

  static constexpr std::chrono::milliseconds kFirstWait{500};
  static constexpr std::chrono::milliseconds kLongestWait{8000};

 private:
  // Records the kept outcomes whose rows are free now (one round trip asks which, so a row still
  // held costs no wait) in one round trip; when that fails on one of them, one by one.
  void record_kept();
  // Each of `outcomes` in its own transaction: those held join `still`, those the database
  // refuses are set aside; another kind of error stops it, leaving `still` and the untried kept.
  void record_one_by_one(std::vector<FireOutcome>& outcomes, std::vector<FireOutcome>& still);

  const std::string owner_;
  const Record record_;
  const SetAside set_aside_;
  const Free free_;
  std::vector<FireOutcome> kept_;
  Clock::time_point since_{};
  Clock::time_point next_{};
  std::chrono::milliseconds wait_{kFirstWait};
};

}  // namespace nudge
