// Installing Nudge into an application's own database: everything lands in schema nudge and
// nothing of the application's is touched; and a binary refuses a schema newer than it knows.

#include <httplib.h>

#include <fstream>
#include <thread>

#include "nudge/migrations.hpp"
#include "process/process_fixture.hpp"
#include "support/prometheus_text.hpp"
#include "support/sse_client.hpp"

namespace nudge::test {
namespace {

// Tables an application typically has already, with names Nudge's objects might have taken:
// Rails' migrations table, and the generic names of a scheduler's own tables.
constexpr const char* kApplicationTables =
    "CREATE TABLE schema_migrations (version varchar PRIMARY KEY);"
    "INSERT INTO schema_migrations VALUES ('20240101120000'), ('20240215093000');"
    "CREATE TABLE contacts (id serial PRIMARY KEY, email text NOT NULL);"
    "INSERT INTO contacts (email) VALUES ('someone@example.com');"
    "CREATE TABLE executions (id serial PRIMARY KEY, job text);"
    "INSERT INTO executions (job) VALUES ('nightly');"
    "CREATE TABLE events (id serial PRIMARY KEY, kind text);"
    "INSERT INTO events (kind) VALUES ('signup');"
    "CREATE TABLE rules (id serial PRIMARY KEY, body text);"
    "INSERT INTO rules (body) VALUES ('allow');"
    "CREATE TABLE reminders (id serial PRIMARY KEY, note text);"
    "INSERT INTO reminders (note) VALUES ('call mum');"
    "CREATE TABLE status_flags (name text PRIMARY KEY);"
    "INSERT INTO status_flags VALUES ('maintenance');";

// Each application table, column by column, with its rows: what must not change.
constexpr const char* kApplicationState =
    "SELECT string_agg(format('%s(%s): %s', t.table_name, c.columns, t.content), E'\\n' "
    "ORDER BY t.table_name) FROM ("
    " SELECT 'schema_migrations' AS table_name, (SELECT string_agg(version, ',' ORDER BY version)"
    "   FROM public.schema_migrations) AS content"
    " UNION ALL SELECT 'contacts', (SELECT string_agg(email, ',') FROM public.contacts)"
    " UNION ALL SELECT 'executions', (SELECT string_agg(job, ',') FROM public.executions)"
    " UNION ALL SELECT 'events', (SELECT string_agg(kind, ',') FROM public.events)"
    " UNION ALL SELECT 'rules', (SELECT string_agg(body, ',') FROM public.rules)"
    " UNION ALL SELECT 'reminders', (SELECT string_agg(note, ',') FROM public.reminders)"
    " UNION ALL SELECT 'status_flags', (SELECT string_agg(name, ',') FROM public.status_flags)) t"
    " JOIN (SELECT table_name, string_agg(column_name || ' ' || data_type, ', '"
    "        ORDER BY ordinal_position) AS columns"
    "   FROM information_schema.columns WHERE table_schema = 'public' GROUP BY table_name) c"
    " USING (table_name)";

class Install : public ProcessTest {
 protected:
  // A database that holds only the application's tables, not Nudge.
  TestDatabase app_{TestDatabase::Start::empty};

  template <typename T>
  T app_value(const std::string& query) {
    pqxx::connection conn(app_.url());
    pqxx::work tx(conn);
    const T v = tx.exec1(query)[0].as<T>();
    tx.commit();
    return v;
  }
  // The README's GRANT block, as written, with its role and database names ours.
  void apply_readme_grants(const std::string& api, const std::string& worker,
                           const std::string& app) {
    std::ifstream readme(std::string(NUDGE_SOURCE_DIR) + "/README.md");
    std::stringstream text;
    text << readme.rdbuf();
    const std::string all = text.str();
    const auto start = all.find("GRANT USAGE ON SCHEMA nudge TO nudge_api");
    ASSERT_NE(start, std::string::npos);
    std::string grants = all.substr(start, all.find("```", start) - start);
    const auto replace_all = [&](const std::string& from, const std::string& to) {
      for (auto at = grants.find(from); at != std::string::npos;
           at = grants.find(from, at + to.size()))
        grants.replace(at, from.size(), to);
    };
    replace_all("nudge_api", api);
    replace_all("nudge_worker", worker);
    replace_all("app_user", app);
    replace_all("ON DATABASE app ", "ON DATABASE \"" + app_.name() + "\" ");
    app_exec(grants);
  }
  void app_exec(const std::string& statements) {
    pqxx::connection conn(app_.url());
    pqxx::nontransaction(conn).exec(statements);
  }
  int migrate(const std::string& url, const std::string& log_name) {
    ChildProcess m({program("nudge-worker"), "--migrate-only"}, worker_env(url),
                   (dir_ / log_name).string());
    const auto code = m.wait(kSlow);
    last_log_ = m.log();
    return code.value_or(-1);
  }
  // Records a migration newer than this binary knows, as a newer binary would have.
  void add_future_migration(const std::string& name, bool breaking) {
    ASSERT_EQ(migrate(app_.url(), "migrate.log"), 0) << last_log_;
    pqxx::connection conn(app_.url());
    pqxx::work tx(conn);
    tx.exec_params(
        "INSERT INTO nudge.migrations (version, name, checksum, breaking) VALUES (9999, $1, 'x', "
        "$2)",
        name, breaking);
    tx.commit();
  }
  std::string last_log_;
};

TEST_F(Install, BesideAnApplicationsOwnTablesItTouchesNoneAndWorks) {
  app_exec(kApplicationTables);
  const auto before = app_value<std::string>(kApplicationState);

  ASSERT_EQ(migrate(app_.url(), "migrate.log"), 0) << last_log_;
  EXPECT_EQ(app_value<std::string>(kApplicationState), before);
  EXPECT_EQ(app_value<long>("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                            "c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"),
            7)
      << "Nudge created a table outside its schema";
  EXPECT_EQ(app_value<long>("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = "
                            "p.pronamespace WHERE n.nspname = 'public'"),
            0)
      << "Nudge created a function outside its schema";

  // It works there: a reminder fires, and the application's flag write stops another one, with
  // the application's own search_path (public only) in force.
  start_worker({}, app_.url());
  app_exec(
      "SELECT * FROM nudge.create_reminder(p_entity_type => 'user', p_entity_id => 'u1',"
      " p_event_type => 'welcome', p_channel => 'log', p_schedule_type => 'one_time',"
      " p_run_at => now());"
      "SELECT * FROM nudge.create_reminder(p_entity_type => 'user', p_entity_id => 'u2',"
      " p_event_type => 'nag', p_channel => 'log', p_schedule_type => 'recurring',"
      " p_interval_seconds => 3600, p_run_at => now() + interval '1 hour',"
      " p_stop_condition_type => 'db_check', p_stop_condition_value => 'u2_done');"
      "INSERT INTO nudge.status_flags (key, value) VALUES ('u2_done', true);");
  EXPECT_TRUE(wait_until(kSlow, [&] {
    return app_value<long>("SELECT count(*) FROM nudge.executions") == 1;
  })) << all_logs();
  EXPECT_EQ(app_value<std::string>("SELECT status || '/' || completed_reason FROM nudge.reminders "
                                   "WHERE entity_id = 'u2'"),
            "COMPLETED/stop_condition");
  EXPECT_EQ(app_value<std::string>(kApplicationState), before);
}

TEST_F(Install, EveryFunctionPinsItsSearchPathOrIsInlinedSql) {
  // Functions PostgreSQL inlines into their callers cannot carry a SET clause: those are plain
  // SQL expressions, every name in them qualified, run under their callers' pinned path. So are
  // the pure calendar functions, the per-row wake-up trigger, the placeholder renderer, the
  // address check of reminders' CHECK and the functions that run an
  // event's rules (only ever called by pinned ones), called many times per parse, per cron fire,
  // per rule, per event and per create, and the sentence of a schedule, written for every
  // reminder shown (sql/README.md).
  ASSERT_EQ(migrate(app_.url(), "migrate.log"), 0) << last_log_;
  EXPECT_EQ(app_value<std::string>(
                "SELECT coalesce(string_agg(p.proname, ', ' ORDER BY p.proname), '') FROM pg_proc "
                "p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = "
                "p.prolang WHERE n.nspname = 'nudge' AND l.lanname <> 'sql' AND NOT "
                "coalesce(p.proconfig::text LIKE '%search_path=pg_catalog, pg_temp%', false) AND "
                "p.proname NOT IN ('cron_value', 'cron_field', 'cron_parse', 'cron_next', "
                "'cron_words', 'local_instants', "
                "'wake_workers', 'queue_wake_up', 'render_placeholders', "
                "'address_problem', 'record_event', 'apply_rule', 'remind_plainly', "
                "'render_text', 'schedule_words')"),
            "");
}

TEST_F(Install, EveryFunctionStatesItsGuarantee) {
  ASSERT_EQ(migrate(app_.url(), "migrate.log"), 0) << last_log_;
  EXPECT_EQ(app_value<std::string>(
                "SELECT coalesce(string_agg(p.oid::regprocedure::text, ', '), '') FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'nudge' AND "
                "(obj_description(p.oid, 'pg_proc') IS NULL "
                " OR obj_description(p.oid, 'pg_proc') LIKE '%\n%')"),
            "")
      << "each function needs a one-line COMMENT ON FUNCTION";
}

TEST_F(Install, AnOlderBinaryRefusesASchemaWithABreakingMigrationItDoesNotKnow) {
  add_future_migration("9999_from_the_future", true);
  ChildProcess worker(worker_command(), worker_env(app_.url()), (dir_ / "worker.log").string());
  EXPECT_EQ(worker.wait(kSlow), 2) << worker.log();
  EXPECT_NE(worker.log().find("9999_from_the_future"), std::string::npos) << worker.log();
  const auto newest_known = app_value<std::string>(
      "SELECT name FROM nudge.migrations WHERE version < 9999 ORDER BY version DESC LIMIT 1");
  EXPECT_NE(worker.log().find("knows migrations up to " + newest_known), std::string::npos)
      << worker.log();

  ChildProcess api(
      {program("nudge-api")},
      {{"NUDGE_DATABASE_URL", app_.url()}, {"NUDGE_API_PORT", std::to_string(free_tcp_port())}},
      (dir_ / "api.log").string());
  EXPECT_EQ(api.wait(kSlow), 2) << api.log();
  EXPECT_NE(api.log().find("9999_from_the_future"), std::string::npos) << api.log();
}

// A breaking migration that lands while an older worker runs: it stops (exit 2, as a start would
// have refused), saying why, instead of claiming on with statements the schema no longer means.
TEST_F(Install, ARunningWorkerStopsWhenABreakingMigrationItDoesNotKnowLands) {
  ChildProcess& worker = start_worker({{"NUDGE_WORKER_LEASE_SECONDS", "5"}}, app_.url());
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return worker.log().find("worker started") != std::string::npos;
  })) << worker.log();
  add_future_migration("9999_landed_meanwhile", true);
  EXPECT_EQ(worker.wait(kSlow), 2) << worker.log();
  EXPECT_NE(worker.log().find("a migration this binary cannot work with has landed"),
            std::string::npos)
      << worker.log();
  EXPECT_NE(worker.log().find("9999_landed_meanwhile"), std::string::npos) << worker.log();
}

// The same for a running nudge-api: it stops serving (exit 2) instead of answering with
// statements the schema no longer means.
TEST_F(Install, ARunningApiStopsWhenABreakingMigrationItDoesNotKnowLands) {
  const int port = free_tcp_port();
  ChildProcess api({program("nudge-api")},
                   {{"NUDGE_DATABASE_URL", app_.url()}, {"NUDGE_API_PORT", std::to_string(port)}},
                   (dir_ / "api.log").string());
  ASSERT_TRUE(wait_until(kSlow, [&] { return scrape(port, "/livez").status == 200; })) << api.log();
  add_future_migration("9999_landed_meanwhile", true);
  EXPECT_EQ(api.wait(kSlow), 2) << api.log();
  EXPECT_NE(api.log().find("a migration this binary cannot work with has landed"),
            std::string::npos)
      << api.log();
  EXPECT_NE(api.log().find("9999_landed_meanwhile"), std::string::npos) << api.log();
}

TEST_F(Install, AnOlderBinaryRunsOnASchemaWithACompatibleMigrationItDoesNotKnow) {
  add_future_migration("9999_compatible", false);
  ChildProcess& worker = start_worker({}, app_.url());
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return worker.log().find("worker started") != std::string::npos;
  })) << worker.log();
  EXPECT_TRUE(worker.running());
  EXPECT_NE(worker.log().find("9999_compatible"), std::string::npos) << worker.log();
}

// A login of its own for a service, with only what it is granted here (dropped with what it
// owns when the test ends).
class Login {
 public:
  Login(const std::string& admin_url, const std::string& name)
      : admin_url_(admin_url), name_(name) {
    pqxx::connection conn(admin_url_);
    pqxx::nontransaction(conn).exec("CREATE ROLE " + name_ + " LOGIN");
  }
  ~Login() {
    try {
      pqxx::connection conn(admin_url_);
      pqxx::nontransaction(conn).exec("DROP OWNED BY " + name_ + "; DROP ROLE " + name_);
    } catch (const std::exception&) {
      // A test database dropped first takes the grants with it; the role is then dropped alone.
    }
  }
  // `url` as this login.
  std::string url(const std::string& url) const {
    const auto at = url.find('@');
    return url.substr(0, url.find("//") + 2) + name_ + url.substr(at);
  }
  const std::string& name() const { return name_; }

 private:
  std::string admin_url_;
  std::string name_;
};

// A role that is not a superuser owns and migrates Nudge once a superuser has let it set
// nudge.placing on a function (PostgreSQL 15): without that grant the migrations refuse before
// applying any, naming it (explore30c F1: they stopped at 0134 with 133 applied, telling the
// owner to run them as the owner).
TEST_F(Install, AnOwnerThatIsNotASuperuserNeedsOneGrantAndIsToldSoBeforeAnythingIsApplied) {
  const Login owner(app_.url(), "nudge_own_" + std::to_string(::getpid()) + "_" +
                                    std::to_string(free_tcp_port()));
  app_exec("GRANT CREATE, TEMP ON DATABASE \"" + app_.name() + "\" TO " + owner.name());
  EXPECT_EQ(migrate(owner.url(app_.url()), "refused.log"), 2) << last_log_;
  EXPECT_NE(last_log_.find(R"(GRANT SET ON PARAMETER \"nudge.placing\" TO the role that owns)"),
            std::string::npos)
      << last_log_;
  EXPECT_EQ(app_value<long>("SELECT count(*) FROM nudge.migrations"), 0);
  app_exec("GRANT SET ON PARAMETER \"nudge.placing\" TO " + owner.name());
  EXPECT_EQ(migrate(owner.url(app_.url()), "owner.log"), 0) << last_log_;
  EXPECT_EQ(app_value<long>("SELECT count(*) FROM nudge.migrations"),
            static_cast<long>(embedded_migrations().size()));
  app_exec("REVOKE SET ON PARAMETER \"nudge.placing\" FROM " + owner.name());
}

// A service's login may only use the schema (no CREATE anywhere, no ownership): with nothing to
// migrate it starts, reading alone; with a migration pending it exits 2 saying the owner must
// apply it, instead of failing on DDL it was never meant to run and being restarted for good.
TEST_F(Install, AServiceLoginThatMayOnlyUseTheSchemaStartsOnceItsOwnerHasMigrated) {
  ASSERT_EQ(migrate(app_.url(), "owner.log"), 0) << last_log_;
  const Login service(app_.url(), "nudge_svc_" + std::to_string(::getpid()) + "_" +
                                      std::to_string(free_tcp_port()));
  app_exec("GRANT USAGE ON SCHEMA nudge TO " + service.name() + "; GRANT SELECT ON " +
           "nudge.migrations TO " + service.name());
  EXPECT_EQ(migrate(service.url(app_.url()), "service.log"), 0) << last_log_;
  EXPECT_EQ(last_log_.find("applied migration"), std::string::npos) << last_log_;

  app_exec(
      "DELETE FROM nudge.migrations WHERE version = (SELECT max(version) FROM "
      "nudge.migrations)");
  EXPECT_EQ(migrate(service.url(app_.url()), "pending.log"), 2) << last_log_;
  EXPECT_NE(last_log_.find("is pending and this login may not apply it"), std::string::npos)
      << last_log_;
  EXPECT_NE(last_log_.find("--migrate-only as the role that owns schema nudge"), std::string::npos)
      << last_log_;
}

// A worker whose login lacks a grant it needs to record deliveries (here INSERT on executions)
// fails every finish alike: it says so and tries again, leaving the reminders to be recorded once
// the grant is given, each once; it used to set each aside as if that row were at fault (PAUSED).
TEST_F(Install, AWorkerMissingAGrantKeepsItsDeliveriesUntilItIsGiven) {
  ASSERT_EQ(migrate(app_.url(), "owner.log"), 0) << last_log_;
  const Login worker_login(app_.url(), "nudge_wrk_" + std::to_string(::getpid()) + "_" +
                                           std::to_string(free_tcp_port()));
  const std::string role = worker_login.name();
  app_exec("GRANT USAGE ON SCHEMA nudge TO " + role +
           "; GRANT ALL ON ALL TABLES IN SCHEMA nudge TO " + role +
           "; GRANT ALL ON ALL SEQUENCES IN SCHEMA nudge TO " + role +
           "; REVOKE INSERT ON nudge.executions FROM " + role);
  app_exec(
      "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
      " next_run_at) SELECT 'grant', 'g' || g, 'nudge', 'log', 'one_time', now() "
      "FROM generate_series(1, 3) g");
  ChildProcess& worker = start_worker({}, worker_login.url(app_.url()));
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return worker.log().find("permission denied for table executions") != std::string::npos;
  })) << worker.log();
  EXPECT_EQ(app_value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'PAUSED'"), 0)
      << worker.log();
  app_exec("GRANT INSERT ON nudge.executions TO " + role);
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return app_value<long>("SELECT count(*) FROM nudge.executions") == 3;
  })) << worker.log();
  EXPECT_EQ(app_value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'COMPLETED'"), 3);
  EXPECT_EQ(app_value<long>("SELECT count(DISTINCT reminder_id) FROM nudge.executions"), 3);
}

// An application's role that may only write flags stops the reminders waiting on them: the
// trigger completes them as Nudge's owner, so the role needs (and gets) no right on reminders.
TEST_F(Install, AnApplicationRoleThatMayOnlyWriteFlagsStopsItsReminders) {
  ASSERT_EQ(migrate(app_.url(), "owner.log"), 0) << last_log_;
  const Login app(app_.url(), "nudge_app_" + std::to_string(::getpid()) + "_" +
                                  std::to_string(free_tcp_port()));
  app_exec("GRANT USAGE ON SCHEMA nudge TO " + app.name() +
           "; GRANT SELECT, INSERT, UPDATE ON nudge.status_flags TO " + app.name());
  app_exec(
      "SELECT nudge.create_reminder('interview', 'A1', 'nag', 'log', 'recurring', "
      "p_interval_seconds => 3600, p_run_at => now() + interval '1 hour', "
      "p_stop_condition_type => 'db_check', p_stop_condition_value => 'fb_done:A1')");
  {
    pqxx::connection conn(app.url(app_.url()));
    pqxx::work tx(conn);
    tx.exec("SELECT nudge.set_flag('fb_done:A1', true)");
    tx.commit();
    // And nothing more: the reminders themselves are not its to change.
    pqxx::work revive(conn);
    EXPECT_THROW(revive.exec("UPDATE nudge.reminders SET status = 'ACTIVE'"),
                 pqxx::insufficient_privilege);
  }
  EXPECT_EQ(app_value<std::string>("SELECT status || ' ' || completed_reason FROM "
                                   "nudge.reminders WHERE entity_id = 'A1'"),
            "COMPLETED stop_condition");
}

// The README's GRANT block, as written (its role and database names ours): each service on it is
// ready; a service whose login lacks one of those grants says which in /readyz, instead of being
// ready while every request (or delivery) that needs it fails.
TEST_F(Install, TheReadmesGrantsMakeEachServiceReadyAndAMissingOneIsNamedInReadyz) {
  ASSERT_EQ(migrate(app_.url(), "owner.log"), 0) << last_log_;
  const std::string suffix = std::to_string(::getpid()) + "_" + std::to_string(free_tcp_port());
  const Login api(app_.url(), "nudge_api_" + suffix), worker(app_.url(), "nudge_worker_" + suffix),
      app(app_.url(), "app_user_" + suffix);
  apply_readme_grants(api.name(), worker.name(), app.name());

  const int metrics_port = free_tcp_port();
  start_worker({{"NUDGE_WORKER_METRICS_PORT", std::to_string(metrics_port)}},
               worker.url(app_.url()));
  const int api_port = free_tcp_port();
  ChildProcess api_process({program("nudge-api")},
                           {{"NUDGE_DATABASE_URL", api.url(app_.url())},
                            {"NUDGE_API_AUTH", "off"},
                            {"NUDGE_API_PORT", std::to_string(api_port)}},
                           (dir_ / "api.log").string());
  // A worker's readiness also says its claims go through and its relay answers.
  const std::string ready = "[+]database ok\n[+]schema ok\n[+]grants ok\nreadyz check passed\n";
  const std::string worker_ready =
      "[+]database ok\n[+]schema ok\n[+]grants ok\n[+]claims ok\n[+]email-relay ok\nreadyz check "
      "passed\n";
  for (const auto& [port, want] : {std::pair{metrics_port, worker_ready}, {api_port, ready}}) {
    EXPECT_TRUE(wait_until(kSlow, [&] { return scrape(port, "/readyz?verbose").body == want; }))
        << scrape(port, "/readyz?verbose").body << all_logs() << api_process.log();
  }
  // Closing a breaker, and so ending its URLs' pacing, by hand: on the README's grants the API
  // could only read breakers, and every close failed (permission denied).
  app_exec(
      "INSERT INTO nudge.target_hosts (host, state, consecutive_failures, opened_at,"
      " next_probe_at, open_seconds) VALUES ('http://down.example:80', 'open', 5, now(),"
      " now() + interval '1 minute', 60)");
  app_exec(
      "INSERT INTO nudge.paced_targets (url, host, pace, limited_at, paced_until,"
      " next_send_at, refused_at) VALUES ('http://down.example:80/hook',"
      " 'http://down.example:80', 1, now(), now() + interval '1 minute', now(), now())");
  httplib::Client client("127.0.0.1", api_port);
  const auto closed =
      client.Post("/v1/targets/close", R"({"host": "http://down.example:80"})", "application/json");
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->status, 200) << closed->body << api_process.log();
  EXPECT_EQ(app_value<long>("SELECT count(*) FROM nudge.paced_targets"), 0);

  // A stream resumed with Last-Event-ID (as EventSource and the dashboard reconnect) catches up
  // from the log: on the README's grants it went silent for good (explore30c F2). And the API's
  // /metrics counts the rules that failed (F3: only the worker's could).
  const auto create = [&](const std::string& id) {
    const auto r = client.Post("/v1/reminders",
                               R"({"entity_type": "u", "entity_id": ")" + id +
                                   R"(", "event_type": "e", "channel": "log",
                                   "schedule_type": "one_time", "run_at": "2099-01-01T00:00:00Z"})",
                               "application/json");
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer") << api_process.log();
  };
  SseClient live(api_port, "/v1/stream");
  ASSERT_EQ(live.answer().status, 200);
  create("first");
  const auto first = live.next_event(std::chrono::seconds(10));
  ASSERT_TRUE(first && !first->id.empty()) << api_process.log();
  create("second");
  SseClient resumed(api_port, "/v1/stream", "Last-Event-ID: " + first->id + "\r\n");
  ASSERT_EQ(resumed.answer().status, 200);
  const auto caught_up = resumed.next_event(std::chrono::seconds(10));
  ASSERT_TRUE(caught_up) << api_process.log();
  EXPECT_EQ(caught_up->event, "reminder");
  EXPECT_NE(caught_up->data.find("second"), std::string::npos) << caught_up->data;
  EXPECT_NE(scrape(api_port, "/metrics").body.find("\nnudge_rule_failures_total "),
            std::string::npos);

  app_exec("REVOKE UPDATE ON nudge.api_tokens FROM " + api.name() +
           "; REVOKE EXECUTE ON FUNCTION nudge.stream_advance() FROM " + api.name() +
           "; REVOKE DELETE ON nudge.changes FROM " + worker.name());
  const Scraped api_unready = scrape(api_port, "/readyz?verbose");
  EXPECT_EQ(api_unready.status, 503);
  EXPECT_EQ(api_unready.body,
            "[+]database ok\n[+]schema ok\n[-]grants failed: this login lacks UPDATE on "
            "nudge.api_tokens, EXECUTE on function nudge.stream_advance() (see README: Least "
            "privilege)\nreadyz check failed\n");
  const Scraped worker_unready = scrape(metrics_port, "/readyz");
  EXPECT_EQ(worker_unready.status, 503);
  EXPECT_NE(worker_unready.body.find("[-]grants failed: this login lacks DELETE on nudge.changes "),
            std::string::npos)
      << worker_unready.body;

  // A stream that cannot catch up (a grant taken away) is told so and ends: it said nothing, for
  // good, with its connection open.
  app_exec("REVOKE SELECT ON nudge.changes_pruned FROM " + api.name());
  SseClient refused(api_port, "/v1/stream", "Last-Event-ID: " + first->id + "\r\n");
  ASSERT_EQ(refused.answer().status, 200);
  const auto told = refused.next_event(std::chrono::seconds(10));
  ASSERT_TRUE(told) << api_process.log();
  EXPECT_EQ(told->event, "stalled");
  EXPECT_EQ(told->json()["error"]["code"], "unavailable");
  EXPECT_FALSE(refused.next(std::chrono::seconds(5)).has_value());
  EXPECT_TRUE(refused.ended());
}

// Nudge's own events run their rules in the session whose change caused them: a worker's finish.
// On the README's grants that worker may not read rules nor create reminders, so a reminder
// that ended by max_fires stayed leased and was delivered again and again (explore17a #1): the
// rules run as Nudge's owner, as a flag's completions do.
TEST_F(Install, OnTheReadmesGrantsAWorkerRunsTheRulesOfNudgesOwnEvents) {
  ASSERT_EQ(migrate(app_.url(), "owner.log"), 0) << last_log_;
  const std::string suffix = std::to_string(::getpid()) + "_" + std::to_string(free_tcp_port());
  const Login api(app_.url(), "nudge_api_" + suffix), worker(app_.url(), "nudge_worker_" + suffix),
      app(app_.url(), "app_user_" + suffix);
  apply_readme_grants(api.name(), worker.name(), app.name());
  app_exec(
      "SELECT nudge.create_rule('escalate', 'nudge.reminder_completed', '{\"type\": \"remind\", "
      "\"reminder\": {\"event_type\": \"escalation\", \"channel\": \"log\", "
      "\"schedule_type\": \"one_time\", \"delay_seconds\": 3600}}');"
      "SELECT nudge.create_reminder('interview', 'E1', 'nag', 'log', 'recurring', "
      "p_interval_seconds => 1, p_run_at => now(), p_max_fires => 2)");
  ChildProcess& w = start_worker({}, worker.url(app_.url()));
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return app_value<long>(
               "SELECT count(*) FROM nudge.reminders WHERE event_type = 'escalation'") == 1;
  })) << w.log();
  EXPECT_EQ(
      app_value<std::string>("SELECT status || ' ' || completed_reason || ' ' || fire_count FROM "
                             "nudge.reminders WHERE event_type = 'nag'"),
      "COMPLETED max_fires 2");
  EXPECT_EQ(app_value<long>("SELECT count(*) FROM nudge.executions"), 2);
  EXPECT_EQ(w.log().find("permission denied"), std::string::npos) << w.log();
}

// An application's database may set, for every session, what Nudge's are not written for
// (explore17a #4, #5): its own now() first in search_path gave schedules of the year 2000, and
// a lock_timeout made a wait on a row lock a 500 (the API's statement_timeout_ms is the limit).
TEST_F(Install, ADatabasesOwnSessionSettingsDoNotReachNudgesSessions) {
  ASSERT_EQ(migrate(app_.url(), "owner.log"), 0) << last_log_;
  const std::string db = "\"" + app_.name() + "\"";
  app_exec(
      "CREATE SCHEMA app; CREATE FUNCTION app.now() RETURNS timestamptz LANGUAGE sql AS "
      "$$ SELECT timestamptz '2000-01-03 09:00:00+00' $$; "
      "ALTER DATABASE " +
      db +
      " SET search_path = app, public, pg_catalog; "
      "ALTER DATABASE " +
      db +
      " SET lock_timeout = '200ms'; "
      "ALTER DATABASE " +
      db + " SET idle_session_timeout = '1s'");
  const std::int64_t id = app_value<std::int64_t>(
      "SELECT (reminder).id FROM nudge.create_reminder('interview', 'S1', 'nag', 'log', "
      "'one_time', p_run_at => pg_catalog.now() + interval '1 hour')");
  const int api_port = free_tcp_port();
  ChildProcess api({program("nudge-api")},
                   {{"NUDGE_DATABASE_URL", app_.url()},
                    {"NUDGE_API_AUTH", "off"},
                    {"NUDGE_API_PORT", std::to_string(api_port)}},
                   (dir_ / "api.log").string());
  ASSERT_TRUE(wait_until(kSlow, [&] { return scrape(api_port, "/livez").status == 200; }))
      << api.log();
  httplib::Client client("127.0.0.1", api_port);

  const auto parsed =
      client.Post("/v1/schedules/parse", R"({"text": "every weekday at 9am"})", "application/json");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->status, 200) << parsed->body;
  EXPECT_EQ(parsed->body.find("2000-"), std::string::npos) << parsed->body;

  {
    pqxx::connection holder(app_.url());
    pqxx::work lock(holder);
    lock.exec("SELECT 1 FROM nudge.reminders WHERE id = " + std::to_string(id) + " FOR UPDATE");
    std::thread release([&] {
      std::this_thread::sleep_for(600ms);
      lock.commit();
    });
    const auto paused = client.Post("/v1/reminders/" + std::to_string(id) + "/pause");
    release.join();
    ASSERT_TRUE(paused);
    EXPECT_EQ(paused->status, 200) << paused->body << api.log();
  }

  EXPECT_EQ(scrape(api_port, "/readyz").status, 200) << api.log();
}

// A login whose sessions are read-only (its role's default_transaction_read_only, or a standby)
// fails every write; its /readyz said ready (explore17a #6).
TEST_F(Install, AReadOnlyLoginIsNotReady) {
  ASSERT_EQ(migrate(app_.url(), "owner.log"), 0) << last_log_;
  const Login ro(app_.url(),
                 "nudge_ro_" + std::to_string(::getpid()) + "_" + std::to_string(free_tcp_port()));
  app_exec("GRANT USAGE ON SCHEMA nudge TO " + ro.name() +
           "; GRANT ALL ON ALL TABLES IN SCHEMA nudge TO " + ro.name() +
           "; GRANT ALL ON ALL SEQUENCES IN SCHEMA nudge TO " + ro.name() +
           "; GRANT EXECUTE ON FUNCTION nudge.stream_advance() TO " + ro.name() +
           "; GRANT TEMP ON DATABASE \"" + app_.name() + "\" TO " + ro.name() + "; ALTER ROLE " +
           ro.name() + " SET default_transaction_read_only = on");
  const int api_port = free_tcp_port();
  ChildProcess api({program("nudge-api")},
                   {{"NUDGE_DATABASE_URL", ro.url(app_.url())},
                    {"NUDGE_API_AUTH", "off"},
                    {"NUDGE_API_PORT", std::to_string(api_port)}},
                   (dir_ / "api.log").string());
  ASSERT_TRUE(wait_until(kSlow, [&] { return scrape(api_port, "/livez").status == 200; }))
      << api.log();
  const Scraped ready = scrape(api_port, "/readyz?verbose");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.body.rfind("[-]database failed: this login's sessions are read-only "
                             "(default_transaction_read_only, or a standby)\n",
                             0),
            0u)
      << ready.body;
}

// Any session may hold the migration's advisory lock: a start waits for it saying so, naming the
// session of its own database that holds it (tests migrating other databases of the cluster at
// the same moment made it name theirs), and stops at once when asked (it waited, deaf to SIGTERM,
// as long as the lock was held).
TEST_F(Install, AStartWaitingForTheMigrationLockSaysSoAndStopsWhenAsked) {
  ASSERT_EQ(migrate(app_.url(), "owner.log"), 0) << last_log_;
  app_exec(
      "DELETE FROM nudge.migrations WHERE version = (SELECT max(version) FROM "
      "nudge.migrations)");
  pqxx::connection holder(app_.url());
  pqxx::nontransaction(holder).exec("SELECT pg_advisory_lock(336976963429)");  // "Nudge"
  ChildProcess worker({program("nudge-worker"), "--migrate-only"}, worker_env(app_.url()),
                      (dir_ / "waiting.log").string());
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return worker.log().find("waiting for the migration lock") != std::string::npos;
  })) << worker.log();
  EXPECT_NE(worker.log().find(std::to_string(holder.backendpid())), std::string::npos)
      << worker.log();
  const auto asked = std::chrono::steady_clock::now();
  worker.signal(SIGTERM);
  EXPECT_TRUE(worker.wait(kSlow).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(3));
}

// An application's transaction left open on a Nudge table held a migration's lock request, and
// every session queued behind it with it (explore28a: no fire for 29 s): the migration waits 2 s
// for a lock at most, gives way naming who holds it, and goes on once it is free.
TEST_F(Install, AMigrationWaitingForATableLockGivesWayNamingWhoHoldsIt) {
  ASSERT_EQ(migrate(app_.url(), "owner.log"), 0) << last_log_;
  // The migrations table as the runner makes it, with nothing recorded: every migration pending.
  app_exec("CREATE TABLE public.kept_migrations (LIKE nudge.migrations INCLUDING ALL)");
  app_exec("DROP SCHEMA nudge CASCADE");
  app_exec("CREATE SCHEMA nudge");
  app_exec("CREATE TABLE nudge.migrations (LIKE public.kept_migrations INCLUDING ALL)");
  pqxx::connection holder(app_.url());
  pqxx::work held(holder);
  held.exec("LOCK TABLE nudge.migrations IN SHARE MODE");
  ChildProcess worker({program("nudge-worker"), "--migrate-only"}, worker_env(app_.url()),
                      (dir_ / "held.log").string());
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return worker.log().find("gives way and tries again") != std::string::npos;
  })) << worker.log();
  EXPECT_NE(worker.log().find("pid " + std::to_string(holder.backendpid()) + " ("),
            std::string::npos)
      << worker.log();
  held.abort();
  const auto code = worker.wait(kSlow);
  ASSERT_TRUE(code.has_value()) << worker.log();
  EXPECT_EQ(*code, 0) << worker.log();
  EXPECT_TRUE(app_value<bool>("SELECT to_regclass('nudge.reminders') IS NOT NULL"));
}

}  // namespace
}  // namespace nudge::test
