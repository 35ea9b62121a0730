#include "fire.hpp"

namespace nudge {

std::string rfc3339_from_pg(const std::string& pg_timestamp) {
  std::string out = pg_timestamp;
  if (const auto space = out.find(' '); space != std::string::npos) out[space] = 'T';
  if (out.size() >= 3 && out.compare(out.size() - 3, 3, "+00") == 0) {
    out.resize(out.size() - 3);
    out += 'Z';
  }
  return out;
}

std::string Fire::idempotency_key() const {
  return "nudge-" + std::to_string(id) + "-" + rfc3339_from_pg(scheduled_for);
}

}  // namespace nudge
