#pragma once
// The gauges the database computes (nudge.gauges: the due backlog, circuit breakers, rule
// failures), in Prometheus' text format beside a program's own metrics: every program that
// serves /metrics writes the same families.

#include <pqxx/pqxx>

#include "nudge/metrics.hpp"

namespace nudge::metrics {

// The due backlog is counted up to this: one index range per scrape, however large it grows.
inline constexpr int kBacklogCountCap = 10000;

// Writes nudge.gauges' families to `out` (a name ending in _total as a counter), leaving out the
// rows the text format could not carry. Throws what the query throws, having written nothing.
void write_database_gauges(pqxx::transaction_base& tx, TextWriter& out);

}  // namespace nudge::metrics
