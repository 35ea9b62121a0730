// The audit trail and tokens as SQL: what the triggers record for an SQL session and for a
// session naming its caller (as nudge-api does), what they leave out (workers, rules, what a
// trigger does in answer), pruning, and nudge.create_token / nudge.revoke_token.

#include <memory>
#include <string>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

// 32 bytes, as decode() gives them: a stand-in for a token's SHA-256.
std::string hash_of(char c) {
  return "decode(repeat('" + std::string(2, c) + "', 32), 'hex')";
}

class AuditTest : public LifecycleTest {
 protected:
  // "subject_type subject change token route" of every audit row, oldest first.
  std::vector<std::string> trail() {
    std::vector<std::string> out;
    for (const auto& r : sql("SELECT concat_ws(' ', subject_type, subject, change, "
                             "coalesce(token, '-'), coalesce(route, '-')) FROM nudge.audit "
                             "ORDER BY id"))
      out.push_back(r[0].c_str());
    return out;
  }
  SqlFailure failure(const std::string& query) {
    try {
      sql(query);
    } catch (const pqxx::sql_error& e) {
      return {e.sqlstate(), primary_message(e)};
    }
    return {};
  }
};

TEST_F(AuditTest, AnSqlSessionIsRecordedAsItsDatabaseUserRowByRow) {
  const std::int64_t id = create_one_time("u1", kInAnHour);
  sql("SELECT nudge.pause_reminder($1)", id);
  sql("SELECT nudge.pause_reminder($1)", id);  // already paused: no change, no row
  sql("INSERT INTO nudge.status_flags (key, value) VALUES ('a', false), ('b', false)");
  sql("DELETE FROM nudge.status_flags WHERE key = 'b'");
  sql("SELECT nudge.put_contact('user', 'u1', 'email', 'a@example.com')");
  const std::string i = std::to_string(id);
  EXPECT_EQ(trail(), (std::vector<std::string>{"reminder " + i + " insert - -",
                                               "reminder " + i + " update - -", "flag a insert - -",
                                               "flag b insert - -", "flag b delete - -",
                                               "contact user/u1/email insert - -"}));
  EXPECT_EQ(value<std::string>("SELECT string_agg(DISTINCT db_user, ',') FROM nudge.audit"),
            value<std::string>("SELECT session_user::text"));
}

TEST_F(AuditTest, EveryFlagAStatementWritesIsRecordedOnceAndLoggedInOneChange) {
  sql("INSERT INTO nudge.status_flags (key) SELECT 'f' || g FROM generate_series(1, 3) g");
  sql("INSERT INTO nudge.status_flags (key, value) VALUES ('f2', true), ('f3', true), ('f4', true) "
      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value");
  sql("UPDATE nudge.status_flags SET value = false WHERE key IN ('f1', 'f4')");
  sql("DELETE FROM nudge.status_flags WHERE key IN ('f1', 'f2')");
  sql("DELETE FROM nudge.status_flags WHERE key = 'none'");  // nothing deleted: nothing recorded
  EXPECT_EQ(trail(), (std::vector<std::string>{"flag f1 insert - -", "flag f2 insert - -",
                                               "flag f3 insert - -", "flag f2 update - -",
                                               "flag f3 update - -", "flag f4 insert - -",
                                               "flag f1 update - -", "flag f4 update - -",
                                               "flag f1 delete - -", "flag f2 delete - -"}));
  // The live stream's log: one row per statement and kind of write, deletes not among them.
  EXPECT_EQ(value<std::string>("SELECT string_agg(array_to_string(flag_keys, ','), ' ' ORDER BY "
                               "id) FROM nudge.changes WHERE kind = 'flag'"),
            "f1,f2,f3 f2,f3 f4 f1,f4");
}

// Each kind of statement on each audited table, written in bulk from SQL: one row per row
// written, in the order the statement wrote them (an upsert's updates come first, as
// PostgreSQL fires its UPDATE triggers first), none for a statement that wrote nothing.
TEST_F(AuditTest, EveryRowAStatementWritesIsRecordedOnce) {
  sql("INSERT INTO nudge.contacts (entity_type, entity_id, channel, address) "
      "SELECT 'user', 'u' || g, 'email', 'u' || g || '@example.com' FROM generate_series(1, 3) g");
  sql("INSERT INTO nudge.contacts (entity_type, entity_id, channel, address) VALUES "
      "('user', 'u3', 'email', 'x@example.com'), ('user', 'u4', 'email', 'y@example.com') "
      "ON CONFLICT (entity_type, entity_id, channel) DO UPDATE SET address = EXCLUDED.address");
  sql("UPDATE nudge.contacts SET address = 'z@example.com' WHERE entity_id IN ('u1', 'u2')");
  sql("DELETE FROM nudge.contacts WHERE entity_id IN ('u2', 'u4')");
  sql("DELETE FROM nudge.contacts WHERE entity_id = 'none'");
  EXPECT_EQ(trail(), (std::vector<std::string>{
                         "contact user/u1/email insert - -", "contact user/u2/email insert - -",
                         "contact user/u3/email insert - -", "contact user/u3/email update - -",
                         "contact user/u4/email insert - -", "contact user/u1/email update - -",
                         "contact user/u2/email update - -", "contact user/u4/email delete - -",
                         "contact user/u2/email delete - -"}));

  sql("DELETE FROM nudge.audit");
  const std::int64_t a = create_one_time("a", kInAnHour);
  const std::int64_t b = create_one_time("b", kInAnHour);
  sql("DELETE FROM nudge.audit");
  sql("UPDATE nudge.reminders SET payload = '{\"n\": 1}' WHERE id IN ($1, $2)", a, b);
  sql("DELETE FROM nudge.reminders WHERE id = $1", b);
  sql("SELECT nudge.create_rule('r1', 'signup', '{\"type\": \"set_flag\", \"flag\": "
      "{\"key\": \"seen\", \"value\": true}}')");
  const std::string rule = value<std::string>("SELECT id::text FROM nudge.rules");
  sql("UPDATE nudge.rules SET enabled = false");
  const std::string event =
      value<std::string>("SELECT (nudge.emit_event('other', 'user', 'u1')->'event'->>'id')");
  sql("UPDATE nudge.events SET refused = 'test'");
  sql("DELETE FROM nudge.events");
  sql("DELETE FROM nudge.rules");
  const std::string ia = std::to_string(a), ib = std::to_string(b);
  EXPECT_EQ(trail(), (std::vector<std::string>{
                         "reminder " + ia + " update - -", "reminder " + ib + " update - -",
                         "reminder " + ib + " delete - -", "rule " + rule + " insert - -",
                         "rule " + rule + " update - -", "event " + event + " insert - -",
                         "event " + event + " update - -", "event " + event + " delete - -",
                         "rule " + rule + " delete - -"}));
}

TEST_F(AuditTest, ASessionNamingItsCallerIsRecordedWithTokenAndRoute) {
  sql("SELECT set_config('nudge.actor', 'ci', false), "
      "set_config('nudge.route', 'PUT /v1/flags/{key}', false)");
  sql("SELECT nudge.set_flag('a', true)");
  sql("SELECT set_config('nudge.actor', '', false), "
      "set_config('nudge.route', 'PUT /v1/flags/{key}', false)");  // auth off: no token
  sql("SELECT nudge.set_flag('a', false)");
  EXPECT_EQ(trail(), (std::vector<std::string>{"flag a insert ci PUT /v1/flags/{key}",
                                               "flag a update - PUT /v1/flags/{key}"}));
}

TEST_F(AuditTest, BatchesAreRecordedOneRowPerReminderInOneStatement) {
  sql("SELECT nudge.create_reminders($1::jsonb)",
      R"([{"entity_type":"u","entity_id":"1","event_type":"e","channel":"log",
           "schedule_type":"one_time","run_at":"2099-01-01T00:00:00Z"},
          {"entity_type":"u","entity_id":"2","event_type":"e","channel":"log",
           "schedule_type":"one_time","run_at":"2099-01-01T00:00:00Z"}])");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.audit a JOIN nudge.reminders r "
                        "ON a.subject = r.id::text WHERE a.subject_type = 'reminder'"),
            2);
}

TEST_F(AuditTest, WorkersTriggersAndRulesAreNotRecordedAgain) {
  // A worker's session: its claims and finishes are its executions.
  create_one_time("fired");
  const long created = value<long>("SELECT count(*) FROM nudge.audit");
  sql("SET nudge.audit = 'off'");
  ASSERT_EQ(finish("w1", claim("w1")), 1);
  sql("RESET nudge.audit");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.audit"), created);

  // A flag completes a reminder: only the flag is the session's change.
  const std::int64_t waiting = create_recurring("waiting", 60, kInAnHour, stop_on("done"));
  sql("DELETE FROM nudge.audit");
  sql("SELECT nudge.set_flag('done', true)");
  EXPECT_EQ(reminder(waiting)["status"].as<std::string>(), "COMPLETED");
  EXPECT_EQ(trail(), (std::vector<std::string>{"flag done insert - -"}));

  // A rule answers an event with a reminder and a flag: the event is the change.
  sql("SELECT nudge.create_rule('nag', 'signup', '{\"type\": \"remind\", \"reminder\": "
      "{\"event_type\": \"welcome\", \"channel\": \"log\", \"schedule_type\": \"one_time\", "
      "\"delay_seconds\": 0}}')");
  sql("SELECT nudge.create_rule('seen', 'signup', '{\"type\": \"set_flag\", \"flag\": "
      "{\"key\": \"seen\", \"value\": true}}')");
  sql("DELETE FROM nudge.audit");
  sql("SELECT nudge.emit_event('signup', 'user', 'u9')");
  sql("SELECT nudge.emit_events('[{\"event_type\": \"signup\", \"entity_type\": \"user\", "
      "\"entity_id\": \"u10\"}]')");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE event_type = 'welcome'"), 2);
  EXPECT_EQ(value<std::string>("SELECT string_agg(subject_type, ',' ORDER BY id) FROM nudge.audit"),
            "event,event");
}

TEST_F(AuditTest, PruningRemovesOldRowsWithoutRecordingItsOwnDeletes) {
  sql("INSERT INTO nudge.status_flags (key) SELECT 'f' || g FROM generate_series(1, 5) g");
  sql("UPDATE nudge.audit SET changed_at = now() - interval '40 days' WHERE subject IN ('f1', "
      "'f2', 'f3')");
  const std::int64_t old_one = create_one_time("old", kInAnHour);
  sql("SELECT nudge.cancel_reminder($1)", old_one);
  sql("UPDATE nudge.reminders SET finished_at = now() - interval '40 days' WHERE id = $1", old_one);
  sql("UPDATE nudge.audit SET changed_at = now() - interval '40 days' WHERE subject = $1::text",
      old_one);
  sql("SET nudge.audit = 'on'");

  EXPECT_EQ(value<int>("SELECT nudge.prune_history(interval '30 days', 2)"), 3);  // 2 audit + 1
  // f3 and the old reminder's three rows (created, cancelled, finished_at moved back).
  EXPECT_EQ(value<int>("SELECT nudge.prune_history(interval '30 days', 1000)"), 4);
  EXPECT_EQ(value<int>("SELECT nudge.prune_history(interval '30 days', 1000)"), 0);
  EXPECT_EQ(trail(), (std::vector<std::string>{"flag f4 insert - -", "flag f5 insert - -"}));
  EXPECT_EQ(value<std::string>("SELECT current_setting('nudge.audit')"), "on");
}

TEST_F(AuditTest, TokensAreCheckedStoredByHashAndRevokedOnceWithANotice) {
  EXPECT_EQ(value<std::string>("SELECT array_to_string((nudge.create_token('ci', " + hash_of('a') +
                               ", '{admin,read,read}')).scopes, ',')"),
            "read,admin");
  const SqlFailure taken =
      failure("SELECT nudge.create_token('ci', " + hash_of('b') + ", '{read}')");
  EXPECT_EQ(taken.sqlstate, "NU409");
  EXPECT_NE(taken.message.find("ci"), std::string::npos) << taken.message;
  for (const auto& [call, field] : std::vector<std::pair<std::string, std::string>>{
           {"nudge.create_token('', " + hash_of('c') + ", '{read}')", "name"},
           {"nudge.create_token('a b', " + hash_of('c') + ", '{read}')", "name"},
           {"nudge.create_token('x', 'short'::bytea, '{read}')", "token_hash"},
           {"nudge.create_token('x', " + hash_of('c') + ", '{}')", "scopes"},
           {"nudge.create_token('x', " + hash_of('c') + ", '{root}')", "scopes"},
           {"nudge.create_token('x', " + hash_of('c') + ", NULL)", "scopes"}}) {
    const SqlFailure f = failure("SELECT " + call);
    EXPECT_EQ(f.sqlstate, "22023") << call;
    EXPECT_EQ(f.message.substr(0, field.size() + 1), field + ":") << f.message;
  }
  EXPECT_EQ(failure("SELECT nudge.revoke_token('nobody')").sqlstate, "NU404");

  pqxx::connection listener(db_.url());
  struct Heard final : pqxx::notification_receiver {
    explicit Heard(pqxx::connection_base& c) : pqxx::notification_receiver(c, "nudge_tokens") {}
    void operator()(const std::string& payload, int) override { names.push_back(payload); }
    std::vector<std::string> names;
  };
  auto heard = std::make_unique<Heard>(listener);
  const std::string first =
      value<std::string>("SELECT revoked_at::text FROM nudge.revoke_token('ci')");
  EXPECT_EQ(value<std::string>("SELECT revoked_at::text FROM nudge.revoke_token('ci')"), first);
  ASSERT_TRUE(wait_until(std::chrono::seconds(5), [&] {
    listener.get_notifs();
    return !heard->names.empty();
  }));
  listener.await_notification(0, 300000);  // a second one would be here by now
  EXPECT_EQ(heard->names, std::vector<std::string>{"ci"});
  heard.reset();
}

}  // namespace
}  // namespace nudge::test
