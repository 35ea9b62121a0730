#pragma once
// The standard process figures of Prometheus' client libraries (process_cpu_seconds_total,
// process_resident_memory_bytes, ...), read from /proc when the metrics are rendered.

#include "nudge/metrics.hpp"

namespace nudge::metrics {

void add_process_metrics(Registry& registry);

}  // namespace nudge::metrics
