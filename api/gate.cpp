#include "gate.hpp"

#include <cctype>
#include <pqxx/pqxx>
#include <string_view>

#include "errors.hpp"
#include "local_request.hpp"
#include "route_support.hpp"
#include "token.hpp"

namespace nudge::api {
namespace {

constexpr std::string_view kBearer = "Bearer";
constexpr const char* kChallenge = "Bearer";
constexpr const char* kInvalidTokenChallenge = "Bearer error=\"invalid_token\"";
constexpr const char* kUnknownToken = "the token is unknown or revoked";

ApiError unauthorized(httplib::Response& res, const char* challenge, const std::string& message) {
  res.set_header("WWW-Authenticate", challenge);
  return ApiError(401, "unauthorized", message, "Authorization");
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// The token of "Authorization: Bearer <token>"; nullopt without the header or another scheme.
// The live stream also takes it as ?access_token=, since a browser's EventSource cannot send
// headers (nudge-api never logs query strings; a proxy in front may: prefer the header).
std::optional<std::string> bearer_token(const httplib::Request& req) {
  if (!req.has_header("Authorization")) {
    if (req.path == "/v1/stream" && req.has_param("access_token"))
      return req.get_param_value("access_token");
    return std::nullopt;
  }
  const std::string value = req.get_header_value("Authorization");
  const std::string_view text(value);
  if (text.size() <= kBearer.size() ||
      !equal_ignoring_case(text.substr(0, kBearer.size()), kBearer) || text[kBearer.size()] != ' ')
    return std::nullopt;
  const auto begin = text.find_first_not_of(' ', kBearer.size());
  const auto end = text.find_last_not_of(' ');
  if (begin == std::string_view::npos) return std::string();
  return std::string(text.substr(begin, end + 1 - begin));
}

}  // namespace

Gate::Gate(const Settings& settings, ConnectionPool& pool)
    : auth_(settings.auth),
      pool_(pool),
      cache_(settings.token_cache),
      limiter_(settings.rate_per_token, settings.burst),
      failures_(settings.auth_failures_per_minute) {}

void Gate::take_rate(const Admitted& admitted, httplib::Response& res) {
  if (admitted.token.empty()) return;
  if (const int wait = limiter_.take(admitted.token, TokenCache::Clock::now()); wait > 0) {
    res.set_header("Retry-After", std::to_string(wait));
    throw ApiError(429, "rate_limited",
                   "token " + admitted.token + " sent more than its " +
                       std::to_string(limiter_.per_second()) + " requests a second (burst " +
                       std::to_string(limiter_.burst()) + "); retry after " + std::to_string(wait) +
                       " s");
  }
}

Gate::Admitted Gate::authorize(const httplib::Request& req, httplib::Response& res,
                               const RouteAccess& route, std::string* known) {
  if (route.scope == Scope::none) return {};
  if (!auth_) {
    check_local_request(req);  // open to this machine, but not to the web pages it shows
    return {{}, {}, kEveryScope};
  }
  std::string hash;
  TokenCache::Holder h = holder(req, res, hash);
  if (known != nullptr) *known = h.name;
  require_scope(res, h, route.scope);
  return {std::move(h.name), std::move(hash), h.scopes};
}

TokenCache::Holder Gate::holder(const httplib::Request& req, httplib::Response& res,
                                std::string& hash) {
  const auto token = bearer_token(req);
  if (!token) {
    throw unauthorized(res, kChallenge,
                       "this route needs a token: send Authorization: Bearer <token> (nudge-api "
                       "token create makes one)");
  }
  const auto now = TokenCache::Clock::now();
  // A mistyped, cut or made-up token is refused here, without a database round trip.
  if (!well_formed_token(*token)) {
    failures_.record(req.remote_addr, "not a Nudge token", false, now);
    throw unauthorized(res, kInvalidTokenChallenge,
                       "the token is not a Nudge token (nudge_, 36 letters or digits, the last 6 "
                       "a checksum)");
  }
  hash = token_hash_hex(*token);
  if (auto known = cache_.find(hash, now)) return std::move(*known);
  if (const int wait = verified_before(hash) ? 0 : failures_.wait(req.remote_addr, now); wait > 0) {
    res.set_header("Retry-After", std::to_string(wait));
    throw ApiError(429, "rate_limited",
                   "this address sent more than " + std::to_string(failures_.per_minute()) +
                       " unknown or revoked tokens a minute, so a token this nudge-api has not "
                       "seen before waits; retry after " +
                       std::to_string(wait) + " s");
  }
  if (auto found = look_up(hash)) return std::move(*found);
  failures_.record(req.remote_addr, "unknown or revoked token", true, now);
  throw unauthorized(res, kInvalidTokenChallenge, kUnknownToken);
}

void Gate::check_again(httplib::Response& res, const std::string& hash, Scope scope) {
  auto h = cache_.find(hash, TokenCache::Clock::now());
  if (!h) h = look_up(hash);
  if (!h) throw unauthorized(res, kInvalidTokenChallenge, kUnknownToken);
  require_scope(res, *h, scope);
}

void Gate::require_scope(httplib::Response& res, const TokenCache::Holder& h, Scope scope) {
  if (holds(h.scopes, scope)) return;
  const std::string needed(scope_name(scope));
  res.set_header("WWW-Authenticate",
                 "Bearer error=\"insufficient_scope\", scope=\"" + needed + "\"");
  throw ApiError(403, "forbidden",
                 "this route needs a token with scope " + needed + "; token " + h.name + " has " +
                     scope_names(h.scopes));
}

std::optional<TokenCache::Holder> Gate::look_up(const std::string& hash) {
  const std::uint64_t generation = cache_.generation();
  const auto rows = on_connection(
      pool_, [&](pqxx::nontransaction& tx) { return tx.exec_prepared("token", hash); });
  if (rows.empty()) return std::nullopt;
  TokenCache::Holder found{rows[0][0].c_str(), parse_scopes(rows[0][1].c_str()).value_or(0)};
  cache_.put(hash, found, TokenCache::Clock::now(), generation);
  std::lock_guard lock(verified_mutex_);
  if (verified_.size() >= 10000) verified_.clear();
  verified_.insert(hash);
  return found;
}

bool Gate::verified_before(const std::string& hash) {
  std::lock_guard lock(verified_mutex_);
  return verified_.contains(hash);
}

}  // namespace nudge::api
