// The audit trail over real HTTP: every change made over REST names its token, route template
// and subject; changes over SQL name the database user; what Nudge does in answer is not
// recorded again; GET /v1/audit pages newest first and filters.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

// One audit row as GET /v1/audit shows it, without its id and time.
struct Row {
  json token;  // null over SQL
  json route;
  std::string subject_type, subject, change;
  bool operator==(const Row&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Row& r) {
  return out << r.token << " " << r.route << " " << r.subject_type << " " << r.subject << " "
             << r.change;
}

Row row(const json& item) {
  return {item["token"], item["route"], item["subject_type"], item["subject"], item["change"]};
}

Row rest(const std::string& token, const std::string& route, const std::string& type,
         const std::string& subject, const std::string& change) {
  return {token.empty() ? json(nullptr) : json(token), route, type, subject, change};
}

class Audit : public ApiTest {
 protected:
  explicit Audit(const std::map<std::string, std::string>& settings = {{"NUDGE_API_AUTH", "token"}})
      : ApiTest(settings) {}

  Reply as(const std::string& token, const std::string& method, const std::string& path,
           const std::string& body = "") {
    return send_with(bearer(token), method, path, body);
  }
  // Every audit row, oldest first, read page by page through the API.
  std::vector<Row> trail(const std::string& query = "") {
    std::vector<json> items;
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      std::string path = "/v1/audit?limit=3" + query;
      if (!cursor.empty()) path += "&cursor=" + cursor;
      const auto r = as(auditor_, "GET", path);
      EXPECT_EQ(r.status, 200) << r.body.dump();
      if (r.status != 200) break;
      for (const auto& item : r.body["items"]) items.push_back(item);
      if (r.body["next_cursor"].is_null()) break;
      cursor = r.body["next_cursor"];
    }
    for (std::size_t i = 1; i < items.size(); ++i)
      EXPECT_LT(items[i]["id"].get<long>(), items[i - 1]["id"].get<long>()) << "newest first";
    std::vector<Row> rows;
    for (auto it = items.rbegin(); it != items.rend(); ++it) rows.push_back(row(*it));
    return rows;
  }
  std::string reminder_body(const std::string& entity) {
    return R"({"entity_type":"user","entity_id":")" + entity +
           R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
           R"("run_at":"2099-01-01T00:00:00Z"})";
  }

  std::string auditor_ = make_token("auditor", "admin");
  // The database user of the API, the CLI and this test.
  std::string db_user_ = value<std::string>("SELECT session_user::text");
};

TEST_F(Audit, EveryChangeOverRestNamesItsTokenRouteAndSubject) {
  const std::string ci = make_token("ci", "read,write");
  const auto created = as(ci, "POST", "/v1/reminders", reminder_body("u1"));
  ASSERT_EQ(created.status, 201);
  const std::string id = std::to_string(created.body["id"].get<long>());
  ASSERT_EQ(as(ci, "POST", "/v1/reminders", reminder_body("u1")).status, 200);  // exists: no change
  ASSERT_EQ(as(ci, "POST", "/v1/reminders/" + id + "/pause").status, 200);
  ASSERT_EQ(as(ci, "POST", "/v1/reminders/" + id + "/pause").status, 200);  // paused: no change
  ASSERT_EQ(as(ci, "PATCH", "/v1/reminders/" + id, R"({"max_fires":3})").status, 200);
  ASSERT_EQ(as(ci, "GET", "/v1/reminders/" + id).status, 200);  // reads are not changes
  ASSERT_EQ(as(ci, "PUT", "/v1/flags/done", R"({"value":false})").status, 200);
  ASSERT_EQ(as(ci, "PUT", "/v1/contacts/user/u1/email", R"({"address":"a@example.com"})").status,
            201);
  ASSERT_EQ(as(ci, "DELETE", "/v1/contacts/user/u1/email").status, 204);
  const auto rule = as(ci, "POST", "/v1/rules",
                       R"({"name":"r","event_type":"signup","action":{"type":"set_flag",)"
                       R"("flag":{"key":"seen","value":false}}})");
  ASSERT_EQ(rule.status, 201) << rule.body.dump();
  const std::string rule_id = std::to_string(rule.body["id"].get<long>());
  ASSERT_EQ(as(ci, "DELETE", "/v1/rules/" + rule_id).status, 204);
  const auto event = as(ci, "POST", "/v1/events",
                        R"({"event_type":"login","entity_type":"user","entity_id":"u1"})");
  ASSERT_EQ(event.status, 201) << event.body.dump();
  const std::string event_id = std::to_string(event.body["event"]["id"].get<long>());
  const auto batch = as(ci, "POST", "/v1/reminders/batch",
                        R"({"items":[)" + reminder_body("b1") + "," + reminder_body("b2") + "]}");
  ASSERT_EQ(batch.status, 200);
  const std::string b1 = std::to_string(batch.body["items"][0]["reminder"]["id"].get<long>());
  const std::string b2 = std::to_string(batch.body["items"][1]["reminder"]["id"].get<long>());
  const auto bulk = as(ci, "POST", "/v1/reminders/pause", R"({"ids":[)" + b1 + "," + b2 + "]}");
  ASSERT_EQ(bulk.status, 200) << bulk.body.dump();

  const std::vector<Row> expected = {
      {nullptr, nullptr, "token", "auditor", "insert"},
      {nullptr, nullptr, "token", "ci", "insert"},
      rest("ci", "POST /v1/reminders", "reminder", id, "insert"),
      rest("ci", "POST /v1/reminders/{id}/pause", "reminder", id, "update"),
      rest("ci", "PATCH /v1/reminders/{id}", "reminder", id, "update"),
      rest("ci", "PUT /v1/flags/{key}", "flag", "done", "insert"),
      rest("ci", "PUT /v1/contacts/{entity_type}/{entity_id}/{channel}", "contact", "user/u1/email",
           "insert"),
      rest("ci", "DELETE /v1/contacts/{entity_type}/{entity_id}/{channel}", "contact",
           "user/u1/email", "delete"),
      rest("ci", "POST /v1/rules", "rule", rule_id, "insert"),
      rest("ci", "DELETE /v1/rules/{id}", "rule", rule_id, "delete"),
      rest("ci", "POST /v1/events", "event", event_id, "insert"),
      rest("ci", "POST /v1/reminders/batch", "reminder", b1, "insert"),
      rest("ci", "POST /v1/reminders/batch", "reminder", b2, "insert"),
      rest("ci", "POST /v1/reminders/pause", "reminder", b1, "update"),
      rest("ci", "POST /v1/reminders/pause", "reminder", b2, "update"),
  };
  EXPECT_EQ(trail(), expected);
  // Over REST, the database user is the API's.
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.audit WHERE db_user <> $1", db_user_), 0);
}

// A role of the cluster for one test (roles are shared by all databases: named after the
// test's), with what an application needs to write flags; dropped at the end.
class AppRole {
 public:
  explicit AppRole(const TestDatabase& db) : name_("app_" + db.name()), db_url_(db.url()) {
    pqxx::connection conn(db_url_);
    pqxx::nontransaction tx(conn);
    tx.exec("CREATE ROLE " + name_ + " LOGIN");
    // Nudge's triggers write as the session's role: the audit trail too.
    tx.exec("GRANT USAGE ON SCHEMA nudge TO " + name_ +
            "; GRANT SELECT, INSERT, UPDATE ON nudge.status_flags, nudge.reminders TO " + name_ +
            "; GRANT INSERT ON nudge.audit TO " + name_ +
            "; GRANT USAGE ON SEQUENCE nudge.audit_id_seq TO " + name_);
  }
  ~AppRole() {
    pqxx::connection conn(db_url_);
    pqxx::nontransaction(conn).exec("DROP OWNED BY " + name_ + "; DROP ROLE " + name_);
  }
  const std::string& name() const { return name_; }
  // The database's URL, logging in as this role.
  std::string url() const {
    const auto user = db_url_.find("://") + 3;
    return db_url_.substr(0, user) + name_ + db_url_.substr(db_url_.find('@', user));
  }

 private:
  std::string name_;
  std::string db_url_;
};

TEST_F(Audit, ChangesOverSqlNameTheDatabaseUser) {
  const AppRole app(db_);
  {
    pqxx::connection conn(app.url());
    pqxx::nontransaction(conn).exec(
        "INSERT INTO nudge.status_flags (key, value) VALUES ('shipped', false); "
        "UPDATE nudge.status_flags SET value = true WHERE key = 'shipped'");
  }
  EXPECT_EQ(trail("&subject_type=flag"),
            (std::vector<Row>{{nullptr, nullptr, "flag", "shipped", "insert"},
                              {nullptr, nullptr, "flag", "shipped", "update"}}));
  EXPECT_EQ(value<std::string>("SELECT string_agg(DISTINCT db_user, ',') FROM nudge.audit "
                               "WHERE subject_type = 'flag'"),
            app.name());
}

TEST_F(Audit, WhatNudgeDoesInAnswerIsNotRecordedAgain) {
  const std::string ci = make_token("ci", "read,write");
  // A rule answers the event with a reminder and a flag; a flag completes a reminder; a worker
  // fires one.
  ASSERT_EQ(as(ci, "POST", "/v1/rules",
               R"({"name":"nag","event_type":"signup","action":{"type":"remind","reminder":{)"
               R"("event_type":"welcome","channel":"log","schedule_type":"one_time",)"
               R"("delay_seconds":0}}})")
                .status,
            201);
  const auto stopped = as(ci, "POST", "/v1/reminders",
                          R"({"entity_type":"user","entity_id":"s","event_type":"e",)"
                          R"("channel":"log","schedule_type":"recurring","interval_seconds":60,)"
                          R"("run_at":"2099-01-01T00:00:00Z","stop_condition_type":"db_check",)"
                          R"("stop_condition_value":"s-done"})");
  ASSERT_EQ(stopped.status, 201);
  const auto event = as(ci, "POST", "/v1/events",
                        R"({"event_type":"signup","entity_type":"user","entity_id":"e1"})");
  ASSERT_EQ(event.status, 201) << event.body.dump();
  ASSERT_EQ(event.body["effects"].size(), 1u);
  ASSERT_EQ(as(ci, "PUT", "/v1/flags/s-done", R"({"value":true})").status, 200);
  EXPECT_EQ(value<std::string>("SELECT status FROM nudge.reminders WHERE entity_id = 's'"),
            "COMPLETED");
  const long before = value<long>("SELECT count(*) FROM nudge.audit");

  ChildProcess worker(worker_command(), {{"NUDGE_DATABASE_URL", db_.url()}},
                      log_.string() + ".worker");
  ASSERT_TRUE(wait_until(60s, [&] {
    return value<long>("SELECT count(*) FROM nudge.executions") == 1;
  })) << worker.log();
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.audit"), before) << "the worker's fire";

  const auto rows = trail("&token=ci");
  std::vector<std::string> kinds;
  for (const Row& r : rows) kinds.push_back(r.route.get<std::string>() + " " + r.subject_type);
  EXPECT_EQ(kinds, (std::vector<std::string>{"POST /v1/rules rule", "POST /v1/reminders reminder",
                                             "POST /v1/events event", "PUT /v1/flags/{key} flag"}));
}

TEST_F(Audit, ListFiltersAndRefusesBadFiltersNamingThem) {
  const std::string ci = make_token("ci", "write");
  ASSERT_EQ(as(ci, "PUT", "/v1/flags/a", R"({"value":false})").status, 200);
  ASSERT_EQ(as(ci, "PUT", "/v1/flags/b", R"({"value":false})").status, 200);
  ASSERT_EQ(as(ci, "PUT", "/v1/flags/a", R"({"value":true})").status, 200);
  EXPECT_EQ(trail("&subject_type=flag&subject=a").size(), 2u);
  EXPECT_EQ(trail("&token=ci").size(), 3u);
  EXPECT_EQ(trail("&token=nobody").size(), 0u);
  EXPECT_EQ(trail("&subject_type=token").size(), 2u);  // auditor, ci
  for (const auto& [query, field] :
       std::vector<std::pair<std::string, std::string>>{{"subject_type=flags", "subject_type"},
                                                        {"subject=", "subject"},
                                                        {"limit=0", "limit"},
                                                        {"cursor=nonsense", "cursor"},
                                                        {"who=ci", "who"}}) {
    const auto r = as(auditor_, "GET", "/v1/audit?" + query);
    EXPECT_EQ(r.status, 400) << query;
    EXPECT_EQ(r.error_field(), field) << query << " " << r.body.dump();
  }
}

// A contact's subject writes each name as its path does: two contacts whose names differ only
// in where a slash stands are told apart (both were a/b/c/email: explore14a #7).
TEST_F(Audit, AContactsSubjectIsWrittenAsItsPath) {
  const std::string ci = make_token("ci", "write");
  ASSERT_EQ(as(ci, "PUT", "/v1/contacts/a%2Fb/c/email", R"({"address":"x@example.com"})").status,
            201);
  ASSERT_EQ(as(ci, "PUT", "/v1/contacts/a/b%2Fc/email", R"({"address":"y@example.com"})").status,
            201);
  ASSERT_EQ(as(ci, "PUT", "/v1/contacts/100%25/d/email", R"({"address":"z@example.com"})").status,
            201);
  const auto first = trail("&subject_type=contact&subject=a%252Fb%2Fc%2Femail");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].subject, "a%2Fb/c/email");
  const auto second = trail("&subject_type=contact&subject=a%2Fb%252Fc%2Femail");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].subject, "a/b%2Fc/email");
  EXPECT_EQ(trail("&subject_type=contact&subject=100%2525%2Fd%2Femail").size(), 1u);
}

// One pooled connection serves two tokens in turn: each change names its own token.
class AuditOneConnection : public Audit {
 protected:
  AuditOneConnection() : Audit({{"NUDGE_API_AUTH", "token"}, {"NUDGE_DATABASE_POOL_SIZE", "1"}}) {}
};

TEST_F(AuditOneConnection, APooledConnectionNeverCarriesTheCallerBefore) {
  const std::string a = make_token("a", "read,write");
  const std::string b = make_token("b", "read,write");
  std::vector<Row> expected = trail();
  for (int i = 0; i < 3; ++i) {
    const std::string& token = i % 2 == 0 ? a : b;
    const std::string name = i % 2 == 0 ? "a" : "b";
    const std::string key = "k" + std::to_string(i);
    ASSERT_EQ(as(token, "PUT", "/v1/flags/" + key, R"({"value":false})").status, 200);
    ASSERT_EQ(as(i % 2 == 0 ? b : a, "GET", "/v1/flags/" + key).status, 200);
    const auto created = as(token, "POST", "/v1/reminders", reminder_body(key));
    ASSERT_EQ(created.status, 201);
    expected.push_back(rest(name, "PUT /v1/flags/{key}", "flag", key, "insert"));
    expected.push_back(rest(name, "POST /v1/reminders", "reminder",
                            std::to_string(created.body["id"].get<long>()), "insert"));
  }
  EXPECT_EQ(trail(), expected);
}

// Without auth (loopback), REST changes still name their route, and no token.
class AuditWithoutAuth : public Audit {
 protected:
  AuditWithoutAuth() : Audit({}) {}
};

TEST_F(AuditWithoutAuth, RestChangesNameTheirRouteAndNoToken) {
  const auto created = post("/v1/reminders", reminder_body("u"));
  ASSERT_EQ(created.status, 201);
  const auto r = get("/v1/audit");
  ASSERT_EQ(r.status, 200);
  ASSERT_GE(r.body["items"].size(), 1u);
  EXPECT_EQ(row(r.body["items"][0]),
            rest("", "POST /v1/reminders", "reminder",
                 std::to_string(created.body["id"].get<long>()), "insert"));
}

}  // namespace
}  // namespace nudge::test
