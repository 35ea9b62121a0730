#include "routes.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "errors.hpp"
#include "input.hpp"
#include "nudge/migrations.hpp"
#include "openapi.hpp"

namespace nudge::api {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kPoolWait = 5s;  // longer than this without a free connection answers 503
constexpr const char* kJson = "application/json";

// Every statement the API sends, by name; prepared once on each pooled connection.
const std::vector<std::pair<std::string, std::string>> kStatements = {
    {"create",
     "SELECT c.created, nudge.reminder_json(c.reminder)::text FROM nudge.create_reminder("
     "p_entity_type => $1, p_entity_id => $2, p_event_type => $3, p_channel => $4, "
     "p_schedule_type => $5, p_run_at => $6::timestamptz, p_interval_seconds => $7::integer, "
     "p_target => $8, p_payload => $9::jsonb, p_stop_condition_type => $10, "
     "p_stop_condition_value => $11, p_max_fires => $12::integer, p_ends_at => $13::timestamptz, "
     "p_cron => $14, p_timezone => $15, p_misfire_policy => $16, "
     "p_max_attempts => $17::integer) c"},
    {"create_batch",
     "SELECT item, created, reminder::text FROM nudge.create_reminders($1::jsonb) ORDER BY "
     "item"},
    {"get", "SELECT nudge.reminder_json(r)::text FROM nudge.reminders r WHERE r.id = $1"},
    {"list",
     "SELECT nudge.reminder_json(r)::text, r.id FROM nudge.reminders r "
     "WHERE ($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR r.entity_type = $2) "
     "AND ($3::text IS NULL OR r.entity_id = $3) AND ($4::text IS NULL OR r.event_type = $4) "
     "AND ($5::text IS NULL OR r.channel = $5) AND ($6::bigint IS NULL OR r.id < $6) "
     "ORDER BY r.id DESC LIMIT $7"},
    {"exists", "SELECT 1 FROM nudge.reminders WHERE id = $1"},
    {"executions",
     "SELECT nudge.execution_json(e)::text, e.scheduled_for::text FROM nudge.executions e "
     "WHERE e.reminder_id = $1 AND ($2::timestamptz IS NULL OR e.scheduled_for < $2) "
     "ORDER BY e.scheduled_for DESC LIMIT $3"},
    {"pause", "SELECT nudge.reminder_json(nudge.pause_reminder($1))::text"},
    {"resume", "SELECT nudge.reminder_json(nudge.resume_reminder($1))::text"},
    {"cancel", "SELECT nudge.reminder_json(nudge.cancel_reminder($1))::text"},
    {"reschedule",
     "SELECT nudge.reminder_json(nudge.reschedule_reminder($1, $2::timestamptz, $3::integer, "
     "$4::jsonb, $5::integer, $6::timestamptz))::text"},
    {"preview",
     "SELECT nudge.preview_schedule($1, coalesce($2::timestamptz, now()), $3::integer, "
     "$4::timestamptz, $5::integer, $6, $7)"},
    {"set_flag", "SELECT row_to_json(f)::text FROM nudge.set_flag($1, $2) f"},
    {"get_flag", "SELECT row_to_json(f)::text FROM nudge.status_flags f WHERE f.key = $1"},
    {"list_flags",
     "SELECT row_to_json(f)::text, f.key FROM nudge.status_flags f "
     "WHERE ($1::text IS NULL OR f.key > $1) ORDER BY f.key LIMIT $2"},
    // Contacts are user data like status_flags: read and deleted directly, written through
    // nudge.put_contact (which checks the address against the channel). `created` reads the
    // table with the statement's snapshot, taken before the function's insert or update.
    {"put_contact",
     "SELECT nudge.contact_json(c)::text, NOT EXISTS (SELECT 1 FROM nudge.contacts o "
     "WHERE o.entity_type = $1 AND o.entity_id = $2 AND o.channel = $3) "
     "FROM nudge.put_contact($1, $2, $3, $4) c"},
    {"get_contact",
     "SELECT nudge.contact_json(c)::text FROM nudge.contacts c "
     "WHERE c.entity_type = $1 AND c.entity_id = $2 AND c.channel = $3"},
    {"delete_contact",
     "DELETE FROM nudge.contacts c WHERE c.entity_type = $1 AND c.entity_id = $2 AND c.channel = "
     "$3 "
     "RETURNING 1"},
    {"list_contacts",
     "SELECT coalesce(jsonb_agg(nudge.contact_json(c) ORDER BY c.channel), '[]')::text "
     "FROM nudge.contacts c WHERE c.entity_type = $1 AND c.entity_id = $2"},
};

// Runs `work` on a pooled connection, each statement in its own implicit transaction: every
// write is one call to a lifecycle function, atomic by itself, so BEGIN and COMMIT would only
// add two round trips per request. A broken connection is not reused.
template <typename Work>
auto on_connection(ConnectionPool& pool, Work&& work) {
  auto lease = pool.acquire(kPoolWait);
  try {
    pqxx::nontransaction tx(*lease);
    return work(tx);
  } catch (const pqxx::broken_connection&) {
    lease.discard();
    throw;
  }
}

std::int64_t reminder_id(const httplib::Request& req) {
  const auto id = parse_id(req.matches[1]);
  if (!id)
    throw ApiError(404, "not_found", "reminder " + std::string(req.matches[1]) + " does not exist");
  return *id;
}

// Query parameters: only `allowed` ones, each at most once.
std::optional<std::string> query(const httplib::Request& req, const std::string& name) {
  if (!req.has_param(name.c_str())) return std::nullopt;
  if (req.get_param_value_count(name.c_str()) > 1) {
    throw bad_field(name, "invalid_value", "must be given once");
  }
  return req.get_param_value(name.c_str());
}

void reject_unknown_params(const httplib::Request& req, const std::set<std::string>& allowed) {
  // httplib also files a form-encoded body under params, and curl -d sends JSON as one: only a
  // query string in the request line holds query parameters.
  if (req.target.find('?') == std::string::npos) return;
  for (const auto& [key, value] : req.params) {
    if (!allowed.contains(key))
      throw bad_field(key, "unknown_field", "is not a known query parameter");
  }
}

std::optional<std::string> filter(const httplib::Request& req, const std::string& name) {
  auto v = query(req, name);
  if (v && (v->empty() || v->size() > kMaxNameChars)) {
    throw bad_field(name, "invalid_value", "must be 1 to 200 characters");
  }
  return v;
}

// {"items": [...], "next_cursor": ...} from rows of (json text, position); `limit`+1 rows
// were asked for, so a surplus row means there is a next page.
std::string page(const pqxx::result& rows, int limit) {
  std::string out = "{\"items\":[";
  const int n = std::min<int>(static_cast<int>(rows.size()), limit);
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    out += rows[i][0].c_str();
  }
  out += "],\"next_cursor\":";
  if (static_cast<int>(rows.size()) > limit) {
    out += json(encode_cursor(rows[n - 1][1].c_str())).dump();
  } else {
    out += "null";
  }
  return out + "}";
}

void reply(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, kJson);
}

// The contact a path names: /v1/contacts/{entity_type}/{entity_id}/{channel}, segments already
// percent-decoded by httplib.
struct ContactKey {
  std::string entity_type, entity_id, channel;
  std::string text() const { return entity_type + "/" + entity_id + "/" + channel; }
};

ContactKey contact_key(const httplib::Request& req) {
  ContactKey key{req.matches[1], req.matches[2], req.matches[3]};
  check_path_name("entity_type", key.entity_type);
  check_path_name("entity_id", key.entity_id);
  check_contact_channel(key.channel);
  return key;
}

ApiError no_contact(const ContactKey& key) {
  return ApiError(404, "not_found", "contact " + key.text() + " does not exist");
}

// One reminder answer from a one-row statement; NU404 from the function becomes 404.
void reply_reminder(httplib::Response& res, const pqxx::result& rows, std::int64_t id) {
  if (rows.empty())
    throw ApiError(404, "not_found", "reminder " + std::to_string(id) + " does not exist");
  reply(res, 200, rows[0][0].c_str());
}

}  // namespace

void set_up_connection(pqxx::connection& conn) {
  pqxx::nontransaction(conn).exec("SET nudge.notify_after_commit = 'on'");
  for (const auto& [name, sql] : kStatements) conn.prepare(name, sql);
}

void add_routes(Router& router, ConnectionPool& pool, Notifier& notifier) {
  router.add("GET", "/health", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, R"({"status":"ok"})");
  });

  router.add("GET", "/ready", [&pool](const httplib::Request&, httplib::Response& res) {
    bool migrated = false;
    try {
      auto lease = pool.acquire(kPoolWait);
      try {
        migrated = is_migrated(*lease);
      } catch (const pqxx::broken_connection&) {
        lease.discard();
        throw;
      }
    } catch (const std::exception&) {
      send_error(res, 503, "unavailable", "the database is unreachable");
      return;
    }
    if (!migrated) {
      send_error(res, 503, "unavailable", "the database schema is not up to date");
      return;
    }
    reply(res, 200, R"({"status":"ready"})");
  });

  router.add("GET", "/openapi.json", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, openapi_document());
  });

  router.add("POST", "/v1/reminders",
             [&pool, &notifier](const httplib::Request& req, httplib::Response& res) {
               const CreateInput in = parse_create(parse_object(req.body));
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared1(
                     "create", in.entity_type, in.entity_id, in.event_type, in.channel,
                     in.schedule_type, in.run_at, in.interval_seconds, in.target, in.payload.dump(),
                     in.stop_condition_type, in.stop_condition_value, in.max_fires, in.ends_at,
                     in.cron, in.timezone, in.misfire_policy, in.max_attempts);
               });
               const bool created = row[0].as<bool>();
               if (created) notifier.poke();
               reply(res, created ? 201 : 200, row[1].c_str());
             });

  router.add("POST", "/v1/reminders/batch",
             [&pool, &notifier](const httplib::Request& req, httplib::Response& res) {
               json body = parse_object(req.body);
               if (body.size() != 1 || !body.contains("items")) {
                 for (const auto& [key, value] : body.items()) {
                   if (key != "items")
                     throw bad_field(key, "unknown_field", "is not a known field");
                 }
                 throw bad_field("items", "missing_field", "is required");
               }
               const json& items = body["items"];
               if (!items.is_array()) throw bad_field("items", "invalid_type", "must be an array");
               if (items.empty() || items.size() > kMaxBatchItems) {
                 throw bad_field("items", "invalid_value", "must hold 1 to 1000 reminders");
               }
               // Serialised item by item and the request's tree freed before the database
               // call: two copies of a 1,000-item tree at once doubled the API's peak memory.
               std::string normalised = "[";
               for (std::size_t i = 0; i < items.size(); ++i) {
                 if (i > 0) normalised += ',';
                 normalised +=
                     parse_create(items[i], "items[" + std::to_string(i) + "].").to_json().dump();
               }
               normalised += ']';
               body = json();
               const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared("create_batch", normalised);
               });
               std::string out = "{\"items\":[";
               for (std::size_t i = 0; i < rows.size(); ++i) {
                 if (i > 0) out += ',';
                 out += std::string("{\"created\":") + (rows[i][1].as<bool>() ? "true" : "false") +
                        ",\"reminder\":" + rows[i][2].c_str() + "}";
               }
               notifier.poke();
               reply(res, 200, out + "]}");
             });

  router.add("GET", "/v1/reminders", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(
        req, {"status", "entity_type", "entity_id", "event_type", "channel", "limit", "cursor"});
    auto status = query(req, "status");
    static const std::set<std::string> kStatuses = {"ACTIVE", "PAUSED", "COMPLETED", "CANCELLED",
                                                    "FAILED"};
    if (status && !kStatuses.contains(*status)) {
      throw bad_field("status", "invalid_value",
                      "must be one of ACTIVE, PAUSED, COMPLETED, CANCELLED, FAILED");
    }
    const int limit = parse_limit(query(req, "limit"));
    std::optional<std::int64_t> before;
    if (auto cursor = query(req, "cursor")) {
      before = parse_id(decode_cursor(*cursor));
      if (!before) throw bad_field("cursor", "invalid_value", "is not a cursor this server gave");
    }
    const auto entity_type = filter(req, "entity_type"), entity_id = filter(req, "entity_id"),
               event_type = filter(req, "event_type"), channel = filter(req, "channel");
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared("list", status, entity_type, entity_id, event_type, channel, before,
                              limit + 1);
    });
    reply(res, 200, page(rows, limit));
  });

  router.add("GET", R"(/v1/reminders/([^/]+))",
             [&pool](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               const auto id = reminder_id(req);
               reply_reminder(
                   res,
                   on_connection(
                       pool, [&](pqxx::nontransaction& tx) { return tx.exec_prepared("get", id); }),
                   id);
             });

  router.add("PATCH", R"(/v1/reminders/([^/]+))",
             [&pool, &notifier](const httplib::Request& req, httplib::Response& res) {
               const auto id = reminder_id(req);
               const PatchInput in = parse_patch(parse_object(req.body));
               std::optional<std::string> payload;
               if (in.payload) payload = in.payload->dump();
               reply_reminder(res,
                              on_connection(pool,
                                            [&](pqxx::nontransaction& tx) {
                                              return tx.exec_prepared("reschedule", id, in.run_at,
                                                                      in.interval_seconds, payload,
                                                                      in.max_fires, in.ends_at);
                                            }),
                              id);
               notifier.poke();  // run_at may have moved earlier
             });

  router.add("GET", R"(/v1/reminders/([^/]+)/executions)",
             [&pool](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {"limit", "cursor"});
               const auto id = reminder_id(req);
               const int limit = parse_limit(query(req, "limit"));
               std::optional<std::string> before;
               if (auto cursor = query(req, "cursor")) {
                 before = decode_cursor(*cursor);
                 if (before->size() > 64)
                   throw bad_field("cursor", "invalid_value", "is not a cursor this server gave");
               }
               const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 if (tx.exec_prepared("exists", id).empty()) {
                   throw ApiError(404, "not_found",
                                  "reminder " + std::to_string(id) + " does not exist");
                 }
                 return tx.exec_prepared("executions", id, before, limit + 1);
               });
               reply(res, 200, page(rows, limit));
             });

  for (const std::string action : {"pause", "resume", "cancel"}) {
    router.add("POST", "/v1/reminders/([^/]+)/" + action,
               [&pool, &notifier, action](const httplib::Request& req, httplib::Response& res) {
                 const auto id = reminder_id(req);
                 reply_reminder(res,
                                on_connection(pool,
                                              [&](pqxx::nontransaction& tx) {
                                                return tx.exec_prepared(action, id);
                                              }),
                                id);
                 if (action == "resume") notifier.poke();
               });
  }

  router.add("POST", "/v1/schedules/preview",
             [&pool](const httplib::Request& req, httplib::Response& res) {
               const PreviewInput in = parse_preview(parse_object(req.body));
               const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared("preview", in.schedule_type, in.from, in.count, in.run_at,
                                         in.interval_seconds, in.cron, in.timezone);
               });
               json times = json::array();
               for (const auto& row : rows) times.push_back(row[0].c_str());
               reply(res, 200, json{{"times", times}}.dump());
             });

  router.add("PUT", R"(/v1/flags/([^/]+))",
             [&pool](const httplib::Request& req, httplib::Response& res) {
               const std::string key = req.matches[1];
               check_flag_key(key);
               const bool value = parse_flag_value(parse_object(req.body));
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared1("set_flag", key, value);
               });
               reply(res, 200, row[0].c_str());
             });

  router.add(
      "GET", R"(/v1/flags/([^/]+))", [&pool](const httplib::Request& req, httplib::Response& res) {
        const std::string key = req.matches[1];
        check_flag_key(key);
        const auto rows = on_connection(
            pool, [&](pqxx::nontransaction& tx) { return tx.exec_prepared("get_flag", key); });
        if (rows.empty()) throw ApiError(404, "not_found", "flag " + key + " does not exist");
        reply(res, 200, rows[0][0].c_str());
      });

  router.add("GET", "/v1/flags", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {"limit", "cursor"});
    const int limit = parse_limit(query(req, "limit"));
    std::optional<std::string> after;
    if (auto cursor = query(req, "cursor")) after = decode_cursor(*cursor);
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared("list_flags", after, limit + 1);
    });
    reply(res, 200, page(rows, limit));
  });

  const std::string contact = R"(/v1/contacts/([^/]+)/([^/]+)/([^/]+))";

  router.add("PUT", contact, [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    const ContactKey key = contact_key(req);
    const std::string address = parse_contact_address(parse_object(req.body));
    const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared1("put_contact", key.entity_type, key.entity_id, key.channel, address);
    });
    reply(res, row[1].as<bool>() ? 201 : 200, row[0].c_str());
  });

  router.add("GET", contact, [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    const ContactKey key = contact_key(req);
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared("get_contact", key.entity_type, key.entity_id, key.channel);
    });
    if (rows.empty()) throw no_contact(key);
    reply(res, 200, rows[0][0].c_str());
  });

  router.add("DELETE", contact, [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    const ContactKey key = contact_key(req);
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared("delete_contact", key.entity_type, key.entity_id, key.channel);
    });
    if (rows.empty()) throw no_contact(key);
    res.status = 204;
  });

  router.add("GET", R"(/v1/contacts/([^/]+)/([^/]+))",
             [&pool](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               const std::string entity_type = req.matches[1], entity_id = req.matches[2];
               check_path_name("entity_type", entity_type);
               check_path_name("entity_id", entity_id);
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared1("list_contacts", entity_type, entity_id);
               });
               reply(res, 200, std::string("{\"items\":") + row[0].c_str() + "}");
             });
}

}  // namespace nudge::api
