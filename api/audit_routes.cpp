// The audit trail: who changed what, newest first (nudge.audit; sql/migrations/0012).

#include <set>
#include <string>

#include "errors.hpp"
#include "input.hpp"
#include "route_support.hpp"
#include "routes.hpp"
#include "statements.hpp"

namespace nudge::api {

void add_audit_routes(Router& router, ConnectionPool& pool) {
  router.add("GET", "/v1/audit", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {"token", "subject_type", "subject", "limit", "cursor"});
    const auto token = filter(req, "token");
    const auto subject_type = query(req, "subject_type");
    static const std::set<std::string> kSubjectTypes = {"reminder", "rule",  "flag",  "contact",
                                                        "event",    "token", "target"};
    if (subject_type && !kSubjectTypes.contains(*subject_type)) {
      throw bad_field("subject_type", "invalid_value",
                      "must be one of reminder, rule, flag, contact, event, token, target");
    }
    // A contact's subject is entity_type/entity_id/channel: three names, each up to three
    // times longer as in its path (%2F for /), and two slashes.
    const auto subject = query(req, "subject");
    if (subject && (subject->empty() || subject->size() > 3 * 3 * kMaxNameChars + 2))
      throw bad_field("subject", "invalid_value", "must be 1 to 1802 characters");
    const int limit = parse_limit(query(req, "limit"));
    const auto before = id_cursor(req);
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_params(per_call_statement("list_audit"), token, subject_type, subject, before,
                            limit + 1);
    });
    reply(res, 200, page(rows, limit));
  });
}

}  // namespace nudge::api
