#include "nudge/secrets.hpp"

#include <algorithm>
#include <utility>

namespace nudge {

std::string mask_secrets(std::string_view text, const std::vector<std::string>& secrets) {
  // Every occurrence is found in the original text, so a mask never hides another secret from
  // the search and a secret that overlaps another is hidden whole.
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // [begin, end) of each occurrence
  for (const std::string& secret : secrets) {
    if (secret.size() < kMinSecretBytes) continue;
    for (auto pos = text.find(secret); pos != std::string_view::npos;
         pos = text.find(secret, pos + 1))
      spans.emplace_back(pos, pos + secret.size());
  }
  std::sort(spans.begin(), spans.end());

  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;  // text before this offset is in `out` already
  for (std::size_t k = 0; k < spans.size();) {
    const std::size_t begin = spans[k].first;
    std::size_t end = spans[k].second;
    for (++k; k < spans.size() && spans[k].first < end; ++k) end = std::max(end, spans[k].second);
    out.append(text.substr(copied, begin - copied));
    out += "***";
    copied = end;
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace nudge
