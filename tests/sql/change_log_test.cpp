// nudge.changes, the log the live stream reads: every change a client is told about is logged
// once (claims are not), delivered in batches of the transactions finished between two
// snapshots (so only a transaction that wrote the log can hold it back), flags, events and rules
// rendered as the REST answers and reminders as the columns the API renders, and pruned with
// the rest of the history.

#include <string>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using namespace std::chrono_literals;

class ChangeLogTest : public LifecycleTest {
 protected:
  // "kind:change" of every change logged so far, oldest first.
  std::vector<std::string> changes() {
    std::vector<std::string> out;
    for (const auto& row : sql("SELECT kind || ':' || change FROM nudge.changes ORDER BY id"))
      out.push_back(row[0].c_str());
    return out;
  }
  // What the stream reads from the start, in its order, once at least `expected` changes are
  // there: the data of flags, events and rules, and for reminders the change with the columns
  // the API renders from (a few of them, as the reminder and execution objects, and the number
  // of the fire's delivery attempts).
  std::vector<nlohmann::json> streamed(std::size_t expected = 0) {
    std::vector<nlohmann::json> out;
    wait_until(5s, [&] {
      out.clear();
      const auto last = value<long>("SELECT nudge.stream_advance()");
      for (const auto& row :
           sql("SELECT (coalesce(data, '{}') || jsonb_strip_nulls(jsonb_build_object("
               "'change', change, "
               "'reminder', CASE WHEN kind = 'reminder' THEN jsonb_build_object("
               "  'id', CASE WHEN r_status IS NOT NULL THEN object_id END, 'status', r_status, "
               "  'completed_reason', r_completed_reason) END, "
               "'execution', CASE WHEN x_fired_at IS NOT NULL THEN jsonb_build_object("
               "  'reminder_id', object_id, 'outcome', x_outcome, 'attempts', x_attempts, "
               // A fire is one row, its delivery attempts' objects joined by commas.
               "  'delivery_attempts', coalesce(jsonb_array_length("
               "    ('[' || x_delivery_attempts || ']')::jsonb), 0)) END)))::text "
               "FROM nudge.stream_changes(0, 0, 0, $1, 1000) ORDER BY pos, id, n",
               last))
        out.push_back(nlohmann::json::parse(row[0].c_str()));
      return out.size() >= expected;
    });
    return out;
  }
};

TEST_F(ChangeLogTest, EachLifecycleChangeIsLoggedOnceInOrder) {
  const std::int64_t id = create_recurring("u1", 60, kInAnHour);
  sql("SELECT nudge.pause_reminder($1)", id);
  sql("SELECT nudge.pause_reminder($1)", id);  // already paused: nothing changes
  sql("SELECT nudge.resume_reminder($1)", id);
  sql("SELECT nudge.reschedule_reminder($1, p_interval_seconds => 120)", id);
  sql("SELECT nudge.cancel_reminder($1)", id);
  // The cancel also emits Nudge's own event (reminder_cancelled).
  EXPECT_EQ(changes(), (std::vector<std::string>{"reminder:created", "reminder:paused",
                                                 "reminder:resumed", "reminder:rescheduled",
                                                 "reminder:cancelled", "event:received"}));
  const auto data = streamed(6);
  ASSERT_EQ(data.size(), 6u);
  EXPECT_EQ(data[3]["change"], "rescheduled");
  // Objects are read as the stream renders them: the reminder as it is now.
  EXPECT_EQ(data[3]["reminder"]["id"], id);
  EXPECT_EQ(data[3]["reminder"]["status"], "CANCELLED");
}

TEST_F(ChangeLogTest, FiresRetriesAndFailuresAreLoggedButClaimsAreNot) {
  const std::int64_t recurring = create_recurring("r", 3600);
  const std::int64_t failing = create_one_time("f", kDue, ", p_max_attempts => 2");
  const std::size_t created = changes().size();

  auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 2u);
  EXPECT_EQ(changes().size(), created) << "a claim is not a change";

  std::vector<Claimed> recurring_fire, failing_fire;
  for (const auto& f : fires) (f.id == recurring ? recurring_fire : failing_fire).push_back(f);
  ASSERT_EQ(finish("w1", recurring_fire), 1);
  ASSERT_EQ(finish("w1", failing_fire, "failed", "boom"), 1);
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 second' WHERE id = $1",
      failing);
  fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  ASSERT_EQ(finish("w1", fires, "failed", "boom again"), 1);

  // The test's own move of the retry to now is a reschedule; the failure ends the reminder,
  // which emits Nudge's own event; the log says fired, and the stream renders it failed.
  EXPECT_EQ(changes(),
            (std::vector<std::string>{"reminder:created", "reminder:created", "reminder:fired",
                                      "reminder:retrying", "reminder:rescheduled", "event:received",
                                      "reminder:fired"}));
  const auto data = streamed(7);
  ASSERT_EQ(data.size(), 7u);
  EXPECT_EQ(data[2]["reminder"]["id"], recurring);
  EXPECT_EQ(data[2]["execution"]["outcome"], "delivered");
  EXPECT_EQ(data[2]["execution"]["reminder_id"], recurring);
  EXPECT_FALSE(data[3].contains("execution"));
  EXPECT_EQ(data[3]["change"], "retrying");
  EXPECT_EQ(data[6]["change"], "failed");
  EXPECT_EQ(data[6]["reminder"]["status"], "FAILED");
  EXPECT_EQ(data[6]["execution"]["outcome"], "failed");
  EXPECT_EQ(data[6]["execution"]["attempts"], 2);
  EXPECT_EQ(data[6]["execution"]["delivery_attempts"], 2);
}

// A log line written records no delivery attempt (nudge.finish_attempts), so the stream looks
// none up for one written at its first attempt (0036); one written after a failed attempt still
// carries that attempt.
TEST_F(ChangeLogTest, ALogLineCarriesTheFailedAttemptsBeforeIt) {
  const std::int64_t first = create_one_time("first");
  const std::int64_t second = create_one_time("second");
  auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 2u);
  std::vector<Claimed> at_once, retried;
  for (const auto& f : fires) (f.id == first ? at_once : retried).push_back(f);
  ASSERT_EQ(finish("w1", at_once), 1);
  ASSERT_EQ(finish("w1", retried, "failed", "disk full"), 1);
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 second' WHERE id = $1", second);
  fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  ASSERT_EQ(finish("w1", fires), 1);

  const auto data = streamed(6);
  ASSERT_EQ(data.size(), 6u);
  EXPECT_EQ(data[2]["reminder"]["id"], first);
  EXPECT_EQ(data[2]["execution"]["attempts"], 1);
  EXPECT_EQ(data[2]["execution"]["delivery_attempts"], 0);
  EXPECT_EQ(data[5]["reminder"]["id"], second);
  EXPECT_EQ(data[5]["execution"]["outcome"], "delivered");
  EXPECT_EQ(data[5]["execution"]["attempts"], 2);
  EXPECT_EQ(data[5]["execution"]["delivery_attempts"], 1);
  EXPECT_EQ(
      value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE reminder_id = $1", second),
      1);
}

TEST_F(ChangeLogTest, AThousandFiresAreOneRowStoredUncompressedAndReadBackWhole) {
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
      "next_run_at) SELECT 'bulk', g::text, 'due', 'log', 'one_time', now() - interval '1 minute' "
      "FROM generate_series(1, 1000) g");
  const auto fires = claim("w1", 1000);
  ASSERT_EQ(fires.size(), 1000u);
  ASSERT_EQ(finish("w1", fires), 1000);

  // Compressing 16 KB of distinct ids and timestamps cost the drain about 1 us per fire (0023).
  const auto row =
      sql("SELECT cardinality(object_ids), cardinality(occurrences), "
          "       pg_column_compression(object_ids) IS NULL AND "
          "       pg_column_compression(occurrences) IS NULL, "
          "       (SELECT count(*) FROM nudge.executions e "
          "         WHERE (e.reminder_id, e.scheduled_for) IN "
          "               (SELECT * FROM unnest(c.object_ids, c.occurrences))) "
          "  FROM nudge.changes c WHERE change = 'fired'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0][0].as<int>(), 1000);
  EXPECT_EQ(row[0][1].as<int>(), 1000);
  EXPECT_TRUE(row[0][2].as<bool>());
  EXPECT_EQ(row[0][3].as<long>(), 1000);
}

TEST_F(ChangeLogTest, AStopFlagLogsTheFlagAndTheReminderItCompleted) {
  const std::int64_t id = create_recurring("s", 60, kInAnHour, stop_on("done"));
  sql("SELECT nudge.set_flag('done', true)");
  EXPECT_EQ(changes(), (std::vector<std::string>{"reminder:created", "flag:set",
                                                 "reminder:completed", "event:received"}));
  const auto data = streamed(4);
  ASSERT_EQ(data.size(), 4u);
  EXPECT_EQ(data[1]["flag"]["key"], "done");
  EXPECT_EQ(data[1]["flag"]["value"], true);
  EXPECT_EQ(data[2]["reminder"]["id"], id);
  EXPECT_EQ(data[2]["reminder"]["completed_reason"], "stop_condition");
}

TEST_F(ChangeLogTest, AFlagSetAgainIsLoggedOnceEachTimeAndStillStopsItsReminders) {
  const std::int64_t id = create_recurring("s", 60, kInAnHour, stop_on("done"));
  sql("SELECT nudge.set_flag('done', false)");  // a new key: inserted
  sql("SELECT nudge.set_flag('done', true)");   // an existing key: updated
  EXPECT_EQ(changes(), (std::vector<std::string>{"reminder:created", "flag:set", "flag:set",
                                                 "reminder:completed", "event:received"}));
  EXPECT_EQ(status(id), "COMPLETED");
  EXPECT_TRUE(value<bool>("SELECT value FROM nudge.status_flags WHERE key = 'done'"));
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 1);
}

TEST_F(ChangeLogTest, AnEventLogsOneRowForItselfAndOneForEachKindOfRowItsRulesWrote) {
  sql("SELECT nudge.create_rule('nag', 'signup', '{\"type\": \"remind\", \"reminder\": "
      "{\"event_type\": \"welcome\", \"channel\": \"log\", \"schedule_type\": \"one_time\", "
      "\"delay_seconds\": 60}}')");
  sql("SELECT nudge.create_rule('seen', 'signup', '{\"type\": \"set_flag\", \"flag\": "
      "{\"key\": \"seen:{{entity_id}}\", \"value\": true}}')");
  sql("DELETE FROM nudge.changes");
  sql("SELECT nudge.emit_event('signup', 'user', 'u1')");
  EXPECT_EQ(changes(),
            (std::vector<std::string>{"reminder:created", "flag:set", "event:received"}));
  sql("DELETE FROM nudge.changes");
  sql("SELECT nudge.emit_events('[{\"event_type\": \"signup\", \"entity_type\": \"user\", "
      "\"entity_id\": \"u2\"}, {\"event_type\": \"signup\", \"entity_type\": \"user\", "
      "\"entity_id\": \"u3\"}]')");
  EXPECT_EQ(changes(),
            (std::vector<std::string>{"reminder:created", "flag:set", "event:received"}));
  EXPECT_EQ(value<long>("SELECT cardinality(object_ids) FROM nudge.changes WHERE kind = 'event'"),
            2);
}

TEST_F(ChangeLogTest, EventsAndRulesAreLoggedWithTheirEffects) {
  const auto rule = value<std::int64_t>(
      "SELECT (nudge.create_rule('stop', 'paid', '{\"type\": \"set_flag\", \"flag\": {\"key\": "
      "\"paid:{{entity_id}}\", \"value\": true}}'::jsonb)).id");
  sql("SELECT nudge.update_rule($1, p_name => 'stop it')", rule);
  sql("SELECT nudge.emit_event('paid', 'invoice', 'i1')");
  sql("SELECT nudge.delete_rule($1)", rule);
  EXPECT_EQ(changes(), (std::vector<std::string>{"rule:created", "rule:updated", "flag:set",
                                                 "event:received", "rule:deleted"}));
  const auto data = streamed(5);
  ASSERT_EQ(data.size(), 5u);
  EXPECT_EQ(data[3]["event"]["entity_id"], "i1");
  ASSERT_EQ(data[3]["effects"].size(), 1u);
  EXPECT_EQ(data[3]["effects"][0]["type"], "set_flag");
  // A deleted rule is sent as it was, though nothing of it is left to read; its earlier changes,
  // read now, are its id alone (explore32a F7: an object of nulls, id null too).
  EXPECT_EQ(data[4]["rule"]["id"], rule);
  EXPECT_EQ(data[4]["rule"]["name"], "stop it");
  EXPECT_EQ(data[0]["rule"], nlohmann::json({{"id", rule}}));
  EXPECT_EQ(data[1]["rule"], nlohmann::json({{"id", rule}}));
  // So is an event deleted since (pruned).
  sql("DELETE FROM nudge.events");
  const auto event_id = data[3]["event"]["id"].get<std::int64_t>();
  EXPECT_EQ(streamed(5)[3]["event"], nlohmann::json({{"id", event_id}}));
}

// The gap case: a transaction that took its id earlier commits after a later one. A reader
// that had moved past the later one by id would never send it; it comes in a later batch.
TEST_F(ChangeLogTest, AChangeCommittedLateByAnEarlierTransactionComesInALaterBatch) {
  pqxx::connection other(db_.url());
  pqxx::work early(other);
  early.exec("SELECT nudge.set_flag('early', true)");
  sql("SELECT nudge.set_flag('late', true)");
  auto data = streamed(1);
  ASSERT_EQ(data.size(), 1u) << "the running transaction's change is not delivered yet";
  EXPECT_EQ(data[0]["flag"]["key"], "late");

  early.commit();
  data = streamed(2);
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[1]["flag"]["key"], "early");
}

// Every API makes a batch every 100 ms, whether or not anyone streams, and the log keeps
// [history] retention_days of changes: a batch reads the changes written since the last one,
// not the whole log (it read every entry of the index: 7 ms a call at 62,000 rows).
TEST_F(ChangeLogTest, ABatchReadsOnlyTheChangesSinceTheLast) {
  // As the API's session calls it from its start, on a log that grows: PostgreSQL then plans it
  // once for any snapshot, while the log is small.
  for (int i = 0; i < 8; ++i) sql("SELECT nudge.stream_advance()");
  sql("INSERT INTO nudge.changes (kind, change, object_ids) "
      "SELECT 'reminder', 'created', ARRAY[n] FROM generate_series(1, 20000) n");
  sql("SELECT nudge.stream_advance()");
  pqxx::connection other(db_.url());
  pqxx::work running(other);
  running.exec("SELECT nudge.set_flag('running', true)");
  sql("SELECT nudge.set_flag('done', true)");
  sql("SELECT nudge.stream_advance()");  // 'running' is in this batch's list of running ones
  running.commit();
  sql("SELECT nudge.set_flag('after', true)");

  // The rows and index entries of the log this session read, in one transaction (the counts
  // are its own until they are flushed, at the end of a transaction).
  pqxx::work tx(conn_);
  const char* read =
      "SELECT pg_stat_get_xact_tuples_returned('nudge.changes'::regclass) "
      "+ pg_stat_get_xact_tuples_fetched('nudge.changes'::regclass) "
      "+ pg_stat_get_xact_tuples_returned('nudge.changes_by_transaction'::regclass)";
  const auto before = tx.exec1(read)[0].as<long>();
  const auto batch = tx.exec1("SELECT nudge.stream_advance()")[0].as<long>();
  const auto after = tx.exec1(read)[0].as<long>();
  const auto keys =
      tx.exec_params1(
            "SELECT string_agg(c.flag_keys[1], ',' ORDER BY c.id) FROM nudge.change_batches b "
            "JOIN nudge.changes c ON c.xid = ANY (b.xids) WHERE b.pos = $1",
            batch)[0]
          .as<std::string>();
  tx.commit();
  EXPECT_LT(after - before, 10) << "rows read to make one batch of two changes";
  EXPECT_EQ(keys, "running,after")
      << "the batch holds the transaction that was running and the one that started after";
}

// The stream is held back only by transactions that wrote the log: an open transaction that
// has an id but changed nothing the stream shows (anywhere on the server) delays nothing.
TEST_F(ChangeLogTest, AnOpenTransactionThatWroteNoChangeHoldsNothingBack) {
  pqxx::connection other(db_.url());
  pqxx::work open(other);
  open.exec("SELECT pg_current_xact_id()");
  sql("SELECT nudge.set_flag('now', true)");
  const auto data = streamed(1);
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0]["flag"]["key"], "now");
  // And a batch is made only when something finished: nothing is written in between.
  const auto last = value<long>("SELECT nudge.stream_advance()");
  EXPECT_EQ(value<long>("SELECT nudge.stream_advance()"), last);
}

// Any login could hold the stream up: an advisory lock on the key stream_advance took, or a call
// of the function itself (SECURITY DEFINER) in a long transaction. Neither can any more.
TEST_F(ChangeLogTest, NoOtherLoginCanHoldTheStreamUp) {
  pqxx::connection other(db_.url());
  pqxx::work holder(other);
  holder.exec("SELECT pg_advisory_lock(hashtext('nudge.stream_advance'))");
  sql("SET statement_timeout = '5s'");
  sql("SELECT nudge.set_flag('past the lock', true)");
  const auto data = streamed(1);
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0]["flag"]["key"], "past the lock");
  holder.abort();

  const std::string role = "nudge_intruder_" + db_.name();
  sql("CREATE ROLE " + role);
  sql("GRANT USAGE ON SCHEMA nudge TO " + role);
  {
    pqxx::work tx(conn_);
    tx.exec("SET LOCAL ROLE " + role);
    try {
      tx.exec("SELECT nudge.stream_advance()");
      ADD_FAILURE() << "a role with USAGE alone called nudge.stream_advance";
    } catch (const pqxx::sql_error& e) {
      EXPECT_NE(std::string(e.what()).find("permission denied for function stream_advance"),
                std::string::npos)
          << e.what();
    }
  }
  sql("DROP OWNED BY " + role);
  sql("DROP ROLE " + role);
}

// A pg_dump restored into a fresh cluster brings a last snapshot whose transaction ids are far
// ahead of the new cluster's: no change was ever taken again. The restored log is let go as
// pruned history, once, and the stream goes on.
TEST_F(ChangeLogTest, AfterARestoreIntoAnotherClusterTheStreamGoesOn) {
  sql("SELECT nudge.set_flag('before the dump', true)");
  ASSERT_EQ(streamed(1).size(), 1u);
  const auto last = value<long>("SELECT max(pos) FROM nudge.change_batches");
  // As the restore leaves it: the old cluster's snapshot, ids far past this one's.
  sql("UPDATE nudge.change_batches SET snapshot = '9000000000:9000000000:' WHERE pos = $1", last);
  sql("SELECT nudge.set_flag('after the restore', true)");
  sql("SELECT nudge.stream_advance()");  // lets the restored log go
  EXPECT_EQ(value<long>("SELECT pos FROM nudge.changes_pruned"), last);
  sql("SELECT nudge.set_flag('after that', true)");
  const auto data = streamed(1);
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0]["flag"]["key"], "after that");
  EXPECT_GT(value<long>("SELECT max(pos) FROM nudge.change_batches"), last);
}

// One statement is one row of the log whatever it changed, read object by object in pages.
TEST_F(ChangeLogTest, AStatementIsOneRowReadObjectByObjectInPages) {
  sql("INSERT INTO nudge.status_flags (key, value) SELECT 'f' || g, true "
      "FROM generate_series(0, 4) g");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.changes"), 1);
  streamed(5);
  const auto last = value<long>("SELECT max(pos) FROM nudge.change_batches");
  const auto first = sql(
      "SELECT pos, id, n, data->'flag'->>'key' FROM nudge.stream_changes(0, 0, 0, $1, 2)", last);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(std::string(first[1][3].c_str()), "f1");
  const auto rest =
      sql("SELECT data->'flag'->>'key' FROM nudge.stream_changes($1, $2, $3, $4, 100)",
          first[1][0].as<long>(), first[1][1].as<long>(), first[1][2].as<int>(), last);
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_EQ(std::string(rest[0][0].c_str()), "f2");
  EXPECT_EQ(std::string(rest[2][0].c_str()), "f4");
  EXPECT_TRUE(sql("SELECT 1 FROM nudge.stream_changes($1 + 1, 0, 0, $1, 100)", last).empty());
}

// A reader takes a page shorter than it asked for as the end (the API then waits for the next
// batch): a page after a change row, whatever number of objects it holds, is full while more
// follow, within a batch and across batches. Read one row at a time, the reader once got none
// after each row of one object, so a transaction of 2,500 events streamed only 1,999 of them.
TEST_F(ChangeLogTest, APageIsFullWhileMoreFollowSoAReaderThatStopsAtAShortOneMissesNothing) {
  sql("INSERT INTO nudge.status_flags (key, value) VALUES ('a0', true), ('a1', true), "
      "('a2', true)");
  {
    pqxx::work tx(conn_);
    for (int i = 0; i < 5; ++i)
      tx.exec("SELECT nudge.set_flag('b" + std::to_string(i) + "', true)");
    tx.commit();
  }
  sql("SELECT nudge.set_flag('c0', true)");
  sql("SELECT nudge.set_flag('c1', true)");
  streamed(10);
  const auto last = value<long>("SELECT max(pos) FROM nudge.change_batches");
  const std::vector<std::string> all = {"a0", "a1", "a2", "b0", "b1", "b2", "b3", "b4", "c0", "c1"};
  for (int limit = 1; limit <= 4; ++limit) {
    std::vector<std::string> keys;
    long pos = 0, id = 0;
    int n = 0;
    for (int page = 0; page < 20; ++page) {
      const auto rows = sql(
          "SELECT pos, id, n, data->'flag'->>'key' FROM nudge.stream_changes($1, $2, $3, $4, $5)",
          pos, id, n, last, limit);
      for (const auto& row : rows) keys.emplace_back(row[3].c_str());
      if (rows.size() < static_cast<std::size_t>(limit)) break;
      pos = rows.back()[0].as<long>();
      id = rows.back()[1].as<long>();
      n = rows.back()[2].as<int>();
    }
    EXPECT_EQ(keys, all) << "pages of " << limit;
  }
}

// A client resuming after pruned history reads from after a whole batch: the largest id and
// place in it.
TEST_F(ChangeLogTest, AReadAfterAWholeBatchStartsAtTheNextOne) {
  sql("SELECT nudge.set_flag('a', true)");
  const auto a = value<long>("SELECT nudge.stream_advance()");
  sql("SELECT nudge.set_flag('b', true)");
  const auto b = value<long>("SELECT nudge.stream_advance()");
  const auto rows =
      sql("SELECT data->'flag'->>'key' FROM nudge.stream_changes($1, 9223372036854775807, "
          "2147483647, $2, 500)",
          a, b);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(std::string(rows[0][0].c_str()), "b");
}

// A page describes each distinct schedule once (0028; 0032 sends it where it differs from the
// row before's, the others repeat it): reminders whose schedules differ in any
// part that the sentence shows each get their own sentence, and those that share it share it.
TEST_F(ChangeLogTest, EachReminderOfAPageCarriesTheSentenceOfItsOwnSchedule) {
  sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, "
      "                             next_run_at, interval_seconds, timezone, max_fires, ends_at, "
      "                             cron, cron_schedule) "
      "SELECT 'page', s.k || '-' || g, 'due', 'log', s.type, date_trunc('hour', now()) + s.at, "
      "       s.every, s.zone, s.fires, date_trunc('hour', now()) + s.ends, s.cron, "
      "       CASE WHEN s.cron IS NOT NULL THEN nudge.cron_parse(s.cron) END "
      "  FROM (VALUES (1, 'one_time', interval '1 hour', NULL::int, 'UTC', NULL::int, "
      "                NULL::interval, NULL::text), "
      "        (2, 'one_time', interval '2 hours', NULL, 'UTC', NULL, NULL, NULL), "
      "        (3, 'one_time', interval '1 hour', NULL, 'Europe/Berlin', NULL, NULL, NULL), "
      "        (4, 'recurring', interval '1 hour', 60, 'UTC', NULL, NULL, NULL), "
      "        (5, 'recurring', interval '2 hours', 60, 'UTC', NULL, NULL, NULL), "
      "        (6, 'recurring', interval '1 hour', 61, 'UTC', NULL, NULL, NULL), "
      "        (7, 'recurring', interval '1 hour', 60, 'UTC', 3, NULL, NULL), "
      "        (8, 'recurring', interval '1 hour', 60, 'UTC', NULL, interval '1 day', NULL), "
      "        (9, 'cron', interval '1 hour', NULL, 'UTC', NULL, NULL, '0 9 * * *'), "
      "        (10, 'cron', interval '1 hour', NULL, 'UTC', NULL, NULL, '0 10 * * *'), "
      "        (11, 'cron', interval '1 hour', NULL, 'Asia/Tokyo', NULL, NULL, '0 9 * * *')) "
      "       s(k, type, at, every, zone, fires, ends, cron), "
      "       generate_series(1, 2) g");
  const auto last = value<long>("SELECT nudge.stream_advance()");
  const auto row = sql(
      // A row whose sentence is as before repeats the last one sent.
      "SELECT count(*), count(DISTINCT s.sentence), "
      "       count(*) FILTER (WHERE s.sentence = nudge.describe_reminder(r)) "
      "  FROM (SELECT s.object_id, first_value(s.r_schedule_text) OVER (PARTITION BY s.sent "
      "                                                    ORDER BY s.pos, s.id, s.n) AS sentence "
      "          FROM (SELECT s.*, count(*) FILTER (WHERE NOT s.r_schedule_text_as_before) "
      "                                   OVER (ORDER BY s.pos, s.id, s.n) AS sent "
      "                  FROM nudge.stream_changes(0, 0, 0, $1, 1000) s) s) s "
      "  JOIN nudge.reminders r ON r.id = s.object_id",
      last);
  EXPECT_EQ(row.at(0)[0].as<long>(), 22);
  // 4 and 5 differ only in their start, which a recurring reminder's sentence does not show.
  EXPECT_EQ(row.at(0)[1].as<long>(), 10);
  EXPECT_EQ(row.at(0)[2].as<long>(), 22);
}

TEST_F(ChangeLogTest, PruningRemovesOldBatchesWithTheirChangesButNeverTheLast) {
  std::vector<long> batches;
  for (int i = 0; i < 4; ++i) {
    sql("SELECT nudge.set_flag('f' || $1, true)", i);
    batches.push_back(value<long>("SELECT nudge.stream_advance()"));
  }
  sql("UPDATE nudge.change_batches SET at = now() - interval '40 days' WHERE pos <= $1",
      batches[1]);
  sql("SELECT nudge.prune_history(interval '30 days', 1000)");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.changes"), 2);
  EXPECT_EQ(value<long>("SELECT pos FROM nudge.changes_pruned"), batches[1]);
  EXPECT_EQ(streamed(2).front()["flag"]["key"], "f2");

  // All old now: the last batch stays, as the next one starts from its snapshot.
  sql("UPDATE nudge.change_batches SET at = now() - interval '40 days'");
  sql("SELECT nudge.prune_history(interval '30 days', 1000)");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.change_batches"), 1);
  EXPECT_EQ(value<long>("SELECT pos FROM nudge.changes_pruned"), batches[2]);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.changes"), 1);
}

}  // namespace
}  // namespace nudge::test
