#pragma once
// What a worker's claim loops did, as Prometheus metrics: claims, attempts and fires by channel
// and outcome, retries, leases rescued from dead workers, delivery durations and lateness. Each
// update is a few relaxed atomic additions on the updating thread's own cache lines.

#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "channel.hpp"
#include "fire.hpp"
#include "nudge/metrics.hpp"

namespace nudge {

class WorkerMetrics {
 public:
  explicit WorkerMetrics(metrics::Registry& registry);

  // A claim that returned `fires` (none, when nothing was due).
  void claimed(const std::vector<Fire>& fires);
  // A delivery starts at `now` (wall clock): a first attempt's lateness.
  void started(const Fire& fire, std::chrono::system_clock::time_point now);
  // A delivery ended after `seconds`.
  void ended(const Fire& fire, const Delivery& delivery, double seconds);

 private:
  struct Channel {
    std::string name;
    metrics::Counter& delivered;  // attempts
    metrics::Counter& failed;
    metrics::Counter& fires_delivered;
    metrics::Counter& fires_failed;
    metrics::Counter& retries;
    metrics::Histogram& duration;
  };
  Channel make_channel(std::string_view name);
  const Channel& channel(std::string_view name);

  metrics::Family<metrics::Counter>& attempts_;
  metrics::Family<metrics::Counter>& fires_;
  metrics::Family<metrics::Counter>& retries_;
  metrics::Family<metrics::Histogram>& duration_;
  metrics::Histogram& batch_;
  metrics::Histogram& lateness_;
  metrics::Counter& rescued_;
  std::vector<Channel> channels_;  // log, webhook, email
  std::mutex others_mutex_;        // a channel of a newer schema: made on first use
  std::deque<Channel> others_;
};

}  // namespace nudge
