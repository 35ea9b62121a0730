#include "assets.hpp"

#include <algorithm>

namespace nudge::api {

const Asset* find_asset(std::string_view name) {
  const auto& all = embedded_assets();
  const auto it =
      std::find_if(all.begin(), all.end(), [&](const Asset& a) { return a.name == name; });
  return it == all.end() ? nullptr : &*it;
}

}  // namespace nudge::api
