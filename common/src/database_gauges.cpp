#include "nudge/database_gauges.hpp"

#include <string>
#include <utility>
#include <vector>

namespace nudge::metrics {

namespace {

struct DatabaseFamily {
  std::string name;
  std::string help;
  std::vector<std::pair<Labels, double>> samples;
};

}  // namespace

void write_database_gauges(pqxx::transaction_base& tx, TextWriter& out) {
  // nudge.gauges answers one row per sample, grouped by name.
  std::vector<DatabaseFamily> families;
  for (const auto& row : tx.exec_params("SELECT name, help, label_name, label_value, value"
                                        " FROM nudge.gauges($1) ORDER BY name, label_value",
                                        kBacklogCountCap)) {
    const std::string name = row[0].c_str();
    if (!valid_metric_name(name) || row[4].is_null()) continue;
    Labels labels;
    if (!row[2].is_null()) {
      if (!valid_label_name(row[2].c_str())) continue;
      labels.emplace_back(row[2].c_str(), row[3].is_null() ? "" : row[3].c_str());
    }
    if (families.empty() || families.back().name != name)
      families.push_back({name, row[1].is_null() ? "" : row[1].c_str(), {}});
    families.back().samples.emplace_back(std::move(labels), row[4].as<double>());
  }
  for (const auto& f : families) {
    // A name ending in _total is a counter, as Prometheus names them (nudge_rule_failures_total).
    out.family(f.name, f.help, f.name.ends_with("_total") ? Type::counter : Type::gauge);
    for (const auto& [labels, value] : f.samples) out.sample(f.name, labels, value);
  }
}

}  // namespace nudge::metrics
