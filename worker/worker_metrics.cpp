#include "worker_metrics.hpp"

#include <algorithm>

namespace nudge {
namespace {

// A log line takes microseconds, a webhook or an email up to its timeout.
const std::vector<double> kDurationBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
// Milliseconds on an idle system, the length of a backlog after downtime.
const std::vector<double> kLatenessBounds = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
const std::vector<double> kBatchBounds = {0, 1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

}  // namespace

WorkerMetrics::WorkerMetrics(metrics::Registry& registry)
    : attempts_(registry.counter_family(
          "nudge_worker_attempts_total",
          "Delivery attempts this worker made, by channel and outcome (delivered or failed).",
          {"channel", "outcome"})),
      fires_(registry.counter_family(
          "nudge_worker_fires_total",
          "Occurrences this worker ended, by channel and outcome: delivered, or failed when the "
          "failed attempt was the occurrence's last.",
          {"channel", "outcome"})),
      retries_(registry.counter_family(
          "nudge_worker_retries_total",
          "Attempts after an occurrence's first (after a failed attempt, or after a worker died "
          "holding it), by channel.",
          {"channel"})),
      duration_(registry.histogram_family("nudge_worker_delivery_duration_seconds",
                                          "How long deliveries took, by channel.", kDurationBounds,
                                          {"channel"})),
      batch_(registry.histogram("nudge_worker_claim_batch_size",
                                "Fires one claim returned (0 when nothing was due).",
                                kBatchBounds)),
      lateness_(registry.histogram(
          "nudge_worker_lateness_seconds",
          "Delivery start minus scheduled time of first attempts, in seconds (worker clock "
          "against database time; early counts as 0).",
          kLatenessBounds)),
      rescued_(registry.counter(
          "nudge_worker_leases_rescued_total",
          "Fires this worker claimed from an expired lease: a worker that died or stalled held "
          "them.")) {
  for (const std::string_view name : {"log", "webhook", "email"})
    channels_.push_back(make_channel(name));
}

WorkerMetrics::Channel WorkerMetrics::make_channel(std::string_view name) {
  return {std::string(name),
          attempts_.with({name, "delivered"}),
          attempts_.with({name, "failed"}),
          fires_.with({name, "delivered"}),
          fires_.with({name, "failed"}),
          retries_.with({name}),
          duration_.with({name})};
}

const WorkerMetrics::Channel& WorkerMetrics::channel(std::string_view name) {
  const auto named = [name](const Channel& c) { return c.name == name; };
  if (const auto it = std::find_if(channels_.begin(), channels_.end(), named);
      it != channels_.end())
    return *it;
  std::lock_guard lock(others_mutex_);
  if (const auto it = std::find_if(others_.begin(), others_.end(), named); it != others_.end())
    return *it;
  return others_.emplace_back(make_channel(name));
}

void WorkerMetrics::claimed(const std::vector<Fire>& fires) {
  batch_.observe(static_cast<double>(fires.size()));
  const auto rescued =
      std::count_if(fires.begin(), fires.end(), [](const Fire& f) { return f.rescued; });
  if (rescued > 0) rescued_.inc(static_cast<std::uint64_t>(rescued));
}

void WorkerMetrics::started(const Fire& fire, std::chrono::system_clock::time_point now) {
  if (fire.attempt != 1) return;  // a retry's lateness is its backoff
  if (const auto late = seconds_since(fire.scheduled_for, now))
    lateness_.observe(std::max(*late, 0.0));
}

void WorkerMetrics::ended(const Fire& fire, const Delivery& delivery, double seconds) {
  const Channel& c = channel(fire.channel);
  c.duration.observe(seconds);
  if (fire.attempt > 1) c.retries.inc();
  if (delivery.delivered) {
    c.delivered.inc();
    c.fires_delivered.inc();
  } else {
    c.failed.inc();
    if (ends_occurrence_failed(fire, delivery)) c.fires_failed.inc();
  }
}

}  // namespace nudge
