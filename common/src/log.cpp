#include "nudge/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <stdexcept>

#include "nudge/clock.hpp"

namespace nudge::log {

namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_mutex;
nlohmann::json g_context = nlohmann::json::object();

const char* level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "info";
}

}  // namespace

Level parse_level(std::string_view name) {
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn") return Level::warn;
  if (name == "error") return Level::error;
  throw std::invalid_argument("unknown log level");
}

void set_level(Level level) {
  g_level = static_cast<int>(level);
}

void set_context(const nlohmann::json& fields) {
  std::lock_guard lock(g_mutex);
  g_context = fields;
}

void write(Level level, std::string_view message, const nlohmann::json& fields) {
  if (static_cast<int>(level) < g_level.load()) return;
  nlohmann::json line = {{"ts", utc_now_rfc3339()}, {"level", level_name(level)}, {"msg", message}};
  std::lock_guard lock(g_mutex);
  for (const auto& [k, v] : g_context.items()) line[k] = v;
  if (fields.is_object())
    for (const auto& [k, v] : fields.items()) line[k] = v;
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

}  // namespace nudge::log
