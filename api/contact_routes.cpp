// Contacts: where reminders without a target are delivered.

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "errors.hpp"
#include "input.hpp"
#include "route_support.hpp"
#include "routes.hpp"
#include "webhook_target.hpp"

namespace nudge::api {
namespace {

// The contact a path names: /v1/contacts/{entity_type}/{entity_id}/{channel}.
struct ContactKey {
  std::string entity_type, entity_id, channel;
  std::string text() const { return entity_type + "/" + entity_id + "/" + channel; }
};

ContactKey contact_key(const httplib::Request& req) {
  ContactKey key{path_param(req, 1, "entity_type"), path_param(req, 2, "entity_id"),
                 path_param(req, 3, "channel")};
  check_path_name("entity_type", key.entity_type);
  check_path_name("entity_id", key.entity_id);
  check_contact_channel(key.channel);
  return key;
}

ApiError no_contact(const ContactKey& key) {
  return ApiError(404, "not_found", "contact " + key.text() + " does not exist");
}

}  // namespace

void add_contact_routes(Router& router, ConnectionPool& pool, const Secrets& secrets,
                        const AddressGuard& guard) {
  const std::string contact = R"(/v1/contacts/([^/]+)/([^/]+)/([^/]+))";

  router.add("PUT", contact,
             [&pool, &secrets, &guard](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               const ContactKey key = contact_key(req);
               const std::string address = parse_contact_address(parse_object(req.body));
               if (key.channel == "webhook")
                 check_webhook_target("address", address, secrets, guard);
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared1("put_contact", key.entity_type, key.entity_id,
                                          key.channel, address);
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
    check_no_body(req.body);
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
               const std::string entity_type = path_param(req, 1, "entity_type"),
                                 entity_id = path_param(req, 2, "entity_id");
               check_path_name("entity_type", entity_type);
               check_path_name("entity_id", entity_id);
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared1("list_contacts", entity_type, entity_id);
               });
               reply(res, 200, std::string("{\"items\":") + row[0].c_str() + "}");
             });
}

}  // namespace nudge::api
