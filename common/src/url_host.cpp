#include "nudge/url_host.hpp"

#include <curl/curl.h>

#include <memory>

namespace nudge {
namespace {

struct UrlFree {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

}  // namespace

std::optional<std::string> url_host(const std::string& url) {
  const std::unique_ptr<CURLU, UrlFree> parsed(curl_url());
  if (!parsed ||
      curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
    return std::nullopt;
  char* host = nullptr;
  if (curl_url_get(parsed.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK) return std::nullopt;
  std::string out = host;
  curl_free(host);
  return out;
}

}  // namespace nudge
