#pragma once
// Structured logging: one JSON object per line on stderr, so logs are machine-readable.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace nudge::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

// Parses "debug" | "info" | "warn" | "error"; throws std::invalid_argument otherwise.
Level parse_level(std::string_view name);
void set_level(Level level);
// Fields added to every line (e.g. the worker id).
void set_context(const nlohmann::json& fields);

void write(Level level, std::string_view message, const nlohmann::json& fields = {});
inline void debug(std::string_view m, const nlohmann::json& f = {}) {
  write(Level::debug, m, f);
}
inline void info(std::string_view m, const nlohmann::json& f = {}) {
  write(Level::info, m, f);
}
inline void warn(std::string_view m, const nlohmann::json& f = {}) {
  write(Level::warn, m, f);
}
inline void error(std::string_view m, const nlohmann::json& f = {}) {
  write(Level::error, m, f);
}

}  // namespace nudge::log
