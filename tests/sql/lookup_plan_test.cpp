// Performance sanity, without timing anything: a session that planned its statements while the
// tables were nearly empty still finds rows through indexes once the tables have grown (0054).
// PL/pgSQL keeps a session's plans, and one made on an analyzed table of a page or two is a
// sequential scan, kept until the next ANALYZE of the table.

#include <string>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class LookupPlanTest : public LifecycleTest {
 protected:
  // Rows of nudge.reminders and nudge.status_flags that sequential scans read while `statement`
  // runs (the backend's counters hold still within a transaction).
  long rows_scanned(const std::string& statement) {
    const std::string read =
        "SELECT pg_stat_get_xact_tuples_returned('nudge.reminders'::regclass)"
        " + pg_stat_get_xact_tuples_returned('nudge.status_flags'::regclass)";
    pqxx::work tx(conn_);
    const long before = tx.exec1(read)[0].as<long>();
    tx.exec(statement);
    const long after = tx.exec1(read)[0].as<long>();
    tx.commit();
    return after - before;
  }
};

TEST_F(LookupPlanTest, PlansMadeOnEmptyTablesStillUseIndexesOnceTheyGrow) {
  sql("SELECT nudge.create_rule('nag', 'done', '{\"type\": \"remind\", \"reminder\": {"
      "\"event_type\": \"form\", \"channel\": \"log\", \"schedule_type\": \"one_time\","
      " \"delay_seconds\": 60, \"stop_condition_type\": \"db_check\","
      " \"stop_condition_value\": \"submitted:{{entity_id}}\"}}')");
  sql("SELECT nudge.create_rule('seen', 'done', '{\"type\": \"set_flag\","
      " \"flag\": {\"key\": \"seen:{{entity_id}}\", \"value\": true}}')");
  // Every operation checked, for entity `n` and the live reminder `id`, in an order in which
  // each one can run.
  const auto operations = [](const std::string& n, const std::string& id) {
    return std::vector<std::string>{
        "SELECT count(*) FROM nudge.create_reminder(" + one_time_args("c" + n) + stop_on("f" + n) +
            ")",
        "SELECT nudge.emit_event('done', 'person', 'e" + n + "')",
        "SELECT nudge.record_events('[{\"event_type\": \"done\", \"entity_type\": \"person\","
        " \"entity_id\": \"b" +
            n + "\"}]')",
        "SELECT count(*) FROM nudge.create_reminders('[{\"entity_type\": \"u\", \"entity_id\":"
        " \"r" +
            n +
            "\", \"event_type\": \"e\", \"channel\": \"log\", \"schedule_type\": \"one_time\","
            " \"run_at\": \"2099-01-01T00:00:00Z\", \"stop_condition_type\": \"db_check\","
            " \"stop_condition_value\": \"k" +
            n + "\"}]')",
        "SELECT nudge.set_flag('s" + n + "', true)",
        "UPDATE nudge.status_flags SET value = true WHERE key = 's" + n + "'",
        "SELECT nudge.pause_reminder(" + id + ")",
        "SELECT nudge.resume_reminder(" + id + ")",
        "SELECT nudge.reschedule_reminder(" + id + ", p_run_at => now() + interval '1 day')",
        "SELECT nudge.cancel_reminder(" + id + ")",
    };
  };
  // As autovacuum leaves a new installation after its first changes: analyzed while small.
  {
    pqxx::nontransaction tx(conn_);
    tx.exec("VACUUM ANALYZE nudge.reminders");
    tx.exec("VACUUM ANALYZE nudge.status_flags");
  }
  // Each operation more often than PL/pgSQL's five custom plans, on nearly empty tables.
  for (int i = 0; i < 8; ++i) {
    const std::string n = "warm" + std::to_string(i);
    for (const std::string& statement :
         operations(n, std::to_string(create_one_time(n, kDue, stop_on("warm-flag" + n)))))
      sql(statement);
  }
  // The tables grow in another session; nothing analyzes them.
  {
    pqxx::connection other(db_.url());
    pqxx::work tx(other);
    tx.exec(
        "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
        " next_run_at, stop_condition_type, stop_condition_value) SELECT 'bulk', g::text, 'e',"
        " 'log', 'one_time', now() + interval '1 day', 'db_check', 'bulk:' || g"
        " FROM generate_series(1, 3000) g");
    tx.exec(
        "INSERT INTO nudge.status_flags (key, value) SELECT 'other:' || g, false"
        " FROM generate_series(1, 3000) g");
    tx.commit();
  }
  const std::string live = value<std::string>(
      "SELECT id FROM nudge.reminders WHERE entity_type = 'bulk' AND entity_id = '7'");
  for (const std::string& statement : operations("later", live))
    EXPECT_LT(rows_scanned(statement), 100) << statement;
}

}  // namespace
}  // namespace nudge::test
