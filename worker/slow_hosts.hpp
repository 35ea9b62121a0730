#pragma once
// The webhook hosts a claim loop finds slow, so that its claims take other hosts' due
// deliveries first: a slow host that succeeds never opens its breaker, and its burst, due first,
// held every slot (explore21a #2: 5,000 webhooks to a host answering after 5-10 s kept another
// team's 30 webhooks back 95-153 s). A host is slow while its deliveries have taken kSlow or more
// on a moving average, or one of them has been running that long; it stops being slow once the
// average falls below, or after kForgetAfter without an ended delivery.
//
// A host is a target's origin as written (scheme://authority); the claim passes over targets LIKE
// its patterns. Targets spelled differently (case, a default port written out) or kept in a
// secret ({{secret.NAME}}) and reminders addressed through contacts are not passed over.

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace nudge {

class SlowHosts {
 public:
  using Clock = std::chrono::steady_clock;
  struct Running {
    std::string target;
    Clock::time_point started;
  };
  struct Change {
    std::string origin;
    bool slow;
    double average_seconds;  // 0 when only a running delivery made it slow,
    double running_seconds;  // and then how long the longest has run (explore28a: a log said 0 s)
  };

  static constexpr std::chrono::milliseconds kSlow{1000};
  static constexpr std::chrono::seconds kForgetAfter{60};
  static constexpr double kWeight = 0.3;  // of the newest delivery in the moving average

  // A webhook delivery to `target` ended after `seconds`.
  void ended(const std::string& target, double seconds, Clock::time_point now);
  // The LIKE patterns of the slow hosts' targets at `now`, given the deliveries running; the hosts
  // that became slow or stopped being slow since the last call are in `changes`.
  std::vector<std::string> patterns(const std::vector<Running>& running, Clock::time_point now,
                                    std::vector<Change>& changes);

  // scheme://authority of an http(s) URL as written, or "" when `target` is none.
  static std::string origin(const std::string& target);
  // The LIKE patterns matching the targets of `origin` and no other origin's.
  static std::vector<std::string> like_patterns(const std::string& origin);

 private:
  struct Seen {
    double average_seconds;
    Clock::time_point last_ended;
  };
  std::map<std::string, Seen> seen_;
  std::set<std::string> slow_;
};

}  // namespace nudge
