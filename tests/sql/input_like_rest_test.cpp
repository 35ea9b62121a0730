// What SQL takes is what REST takes (0046): times RFC 3339 can write, at every entry point; batch
// items typed as REST types them; Unicode white space as blank as spaces; the bulk filters and
// reschedule refusing what REST refuses. And a row written by hand with an uncomputable time
// (-infinity) cannot stall a worker: its finish, its claim and the worker's wait all go on.

#include <pqxx/errorhandler>
#include <string>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

// A statement expected to fail with 22023 and a message starting with `message`.
struct RefusedCall {
  std::string statement;
  std::string message;
};

class InputLikeRest : public LifecycleTest {
 protected:
  void expect_refusals(const std::vector<RefusedCall>& cases) {
    for (const RefusedCall& c : cases) {
      SCOPED_TRACE(c.statement.substr(0, 200));
      const SqlFailure f = failure_of(c.statement);
      EXPECT_EQ(f.sqlstate, "22023") << f.message;
      EXPECT_TRUE(f.message.starts_with(c.message)) << f.message;
    }
  }
};

const std::string kLogReminder =
    "p_entity_type => 't', p_entity_id => 'x', p_event_type => 'e', "
    "p_channel => 'log', ";

std::string batch_with(const std::string& fields) {
  return R"([{"entity_type": "t", "entity_id": "ok", "event_type": "e", "channel": "log",)"
         R"( "schedule_type": "recurring", "interval_seconds": 60},)"
         R"( {"entity_type": "t", "entity_id": "x", "event_type": "e", "channel": "log", )" +
         fields + "}]";
}

std::string events_with(const std::string& fields) {
  return R"([{"event_type": "e", "entity_type": "t", "entity_id": "ok"}, {)" + fields + "}]";
}

TEST_F(InputLikeRest, TimesRfc3339CannotWriteAreRefusedAtEveryEntryPointNamingTheField) {
  const std::int64_t id = create_recurring("live", 60, kInAnHour);
  const std::string reschedule = "SELECT nudge.reschedule_reminder(" + std::to_string(id) + ", ";
  expect_refusals({
      {"SELECT nudge.create_reminder(" + kLogReminder +
           "p_schedule_type => 'recurring', p_interval_seconds => 60, p_run_at => '-infinity')",
       "run_at: must not be before 0001-01-01T00:00:00Z"},
      {"SELECT nudge.create_reminder(" + kLogReminder +
           "p_schedule_type => 'one_time', p_run_at => '4000-01-01 BC')",
       "run_at: must not be before 0001-01-01T00:00:00Z"},
      {"SELECT nudge.create_reminder(" + kLogReminder +
           "p_schedule_type => 'one_time', p_run_at => '0001-01-01T00:00:00+01:00')",
       "run_at: must not be before 0001-01-01T00:00:00Z"},
      {"SELECT nudge.create_reminder(" + kLogReminder +
           "p_schedule_type => 'one_time', p_run_at => 'infinity')",
       "run_at: must not be after 9999-12-31T23:59:59Z"},
      {"SELECT nudge.create_reminder(" + kLogReminder +
           "p_schedule_type => 'cron', p_cron => '* * * * *', p_run_at => '-infinity')",
       "run_at: must not be before"},
      {"SELECT nudge.create_reminder(" + kLogReminder +
           "p_schedule_type => 'recurring', p_interval_seconds => 60, p_ends_at => 'infinity')",
       "ends_at: must not be after 9999-12-31T23:59:59Z"},
      {reschedule + "p_run_at => '-infinity')", "run_at: must not be before"},
      {reschedule + "p_ends_at => 'infinity')", "ends_at: must not be after"},
      {"SELECT nudge.emit_event('e', 't', 'x', p_occurred_at => '-infinity')",
       "occurred_at: must not be before 0001-01-01T00:00:00Z"},
      {"SELECT nudge.emit_event('e', 't', 'x', p_occurred_at => 'infinity')",
       "occurred_at: must not be after"},
      {"SELECT nudge.describe_schedule('one_time', '-infinity')", "run_at: must not be before"},
      {"SELECT nudge.preview_schedule('one_time', now(), p_run_at => 'infinity')",
       "run_at: must not be after"},
      {"SELECT nudge.preview_schedule('cron', '-infinity', p_cron => '* * * * *')",
       "from: must not be before"},
      // In a batch, a time given as text: REST's pattern first, then the range.
      {"SELECT nudge.create_reminders('" +
           batch_with(R"("schedule_type": "one_time", "run_at": "0001-01-01T00:00:00+01:00")") +
           "')",
       "items[1].run_at: must not be before 0001-01-01T00:00:00Z"},
      // A rule's template is checked as a create.
      {R"(SELECT nudge.create_rule('r', 'e', '{"type": "remind", "reminder": {"event_type": )"
       R"("n", "channel": "log", "schedule_type": "one_time", )"
       R"("ends_at": "9999-12-31T23:59:59-01:00"}}'))",
       "action.reminder.ends_at: must not be after 9999-12-31T23:59:59Z"},
      {"SELECT nudge.emit_events('" +
           events_with(R"("event_type": "e", "entity_type": "t", "entity_id": "x",)"
                       R"( "occurred_at": "0001-01-01T00:00:00+01:00")") +
           "')",
       "items[1].occurred_at: must not be before"},
  });
  EXPECT_EQ(count("nudge.reminders"), 1);
  EXPECT_EQ(count("nudge.rules"), 0);
  EXPECT_EQ(count("nudge.events"), 0);
  // The first and last instants RFC 3339 writes are taken.
  EXPECT_TRUE(
      create(kLogReminder + "p_schedule_type => 'one_time', p_run_at => '0001-01-01T00:00:00Z'")
          .first);
  EXPECT_TRUE(create("p_entity_type => 't', p_entity_id => 'y', p_event_type => 'e', "
                     "p_channel => 'log', p_schedule_type => 'one_time', "
                     "p_run_at => '9999-12-31T23:59:59Z', p_ends_at => '9999-12-31T23:59:59Z'")
                  .first);
}

// A recurring reminder at -infinity made every finish of its worker fail ("cannot subtract
// infinite timestamps"); the worker keeps what it could not record and claims in the same
// transaction, so nothing it held or would claim fired again, cancelled or not. Rows written
// before 0046, or by hand, now fire once and go on.
TEST_F(InputLikeRest, ARowAtMinusInfinityWrittenByHandCannotStallTheWorker) {
  const std::int64_t recurring = create_recurring("recurring", 60);
  const std::int64_t cancelled = create_recurring("cancelled", 60);
  const std::int64_t cron =
      create(
          "p_entity_type => 't', p_entity_id => 'cron', p_event_type => 'e', "
          "p_channel => 'log', p_schedule_type => 'cron', p_cron => '* * * * *', "
          "p_misfire_policy => 'fire_all', p_run_at => now() - interval '1 hour'")
          .second;
  const std::int64_t once = create_one_time("once");
  const std::int64_t skipped =
      create_recurring("skipped", 60, kDue, ", p_misfire_policy => 'skip'");
  const std::int64_t bystander = create_one_time("bystander");
  sql("UPDATE nudge.reminders SET next_run_at = '-infinity' WHERE id <> $1", bystander);

  // The worker's wait and the gauges read them as due (since year 1 at the earliest).
  EXPECT_EQ(value<double>("SELECT nudge.seconds_until_due()"), 0.0);
  EXPECT_GT(value<double>("SELECT value FROM nudge.gauges(100) "
                          "WHERE name = 'nudge_oldest_due_seconds'"),
            6.0e10);
  EXPECT_EQ(value<std::string>("SELECT jsonb_typeof(nudge.overview()->'oldest_due_seconds')"),
            "number");

  const std::vector<Claimed> fires = claim("w1");
  ASSERT_EQ(fires.size(), 5u) << "the skipped one moves on without a fire";
  sql("SELECT nudge.cancel_reminder($1)", cancelled);  // its lease stays: the finish still runs
  EXPECT_EQ(finish("w1", fires), 5);

  EXPECT_EQ(status(bystander), "COMPLETED");
  EXPECT_EQ(status(once), "COMPLETED");
  EXPECT_EQ(status(cancelled), "CANCELLED");
  for (const std::int64_t id : {recurring, skipped}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(status(id), "ACTIVE");
    EXPECT_TRUE(
        value<bool>("SELECT next_run_at > now() AND next_run_at <= now() + interval "
                    "'60 seconds' FROM nudge.reminders WHERE id = $1",
                    id))
        << "counted on from the fire (or the skip): one interval later";
  }
  EXPECT_EQ(status(cron), "ACTIVE");
  EXPECT_TRUE(
      value<bool>("SELECT next_run_at > now() - interval '1 minute' "
                  "FROM nudge.reminders WHERE id = $1",
                  cron))
      << "no catch-up from -infinity: the next minute";
  EXPECT_EQ(count("nudge.executions"), 5);
  EXPECT_FALSE(sql("SELECT nudge.seconds_until_due()").at(0).at(0).is_null());
}

// A cron reminder with no occurrence left waits at infinity: the worker's wait is not due.
TEST_F(InputLikeRest, AReminderWaitingAtInfinityIsNeverDueForTheWorkersWait) {
  const std::int64_t id = create_recurring("later", 60, kInAnHour);
  sql("UPDATE nudge.reminders SET next_run_at = 'infinity' WHERE id = $1", id);
  EXPECT_TRUE(sql("SELECT nudge.seconds_until_due()").at(0).at(0).is_null());
}

TEST_F(InputLikeRest, BatchTimesMustBeRfc3339WithAnOffsetAsOverRest) {
  const std::string bad = "must be an RFC 3339 time with an offset, e.g. 2026-01-31T09:00:00Z";
  for (const std::string text :
       {"tomorrow", "2030-01-01", "2030-01-01T09:00:00", "4000-01-01 BC", "infinity", "-infinity",
        "2030-01-01T09:00:00 BC", "2030-01-01T24:00:00Z", "2030-01-01T09:00:60Z",
        "2030-02-30T09:00:00Z", "0000-06-01T09:00:00Z", "2030-01-01T09:00:00+20:00",
        "2030-01-01T09:00:00+0100", " 2030-01-01T09:00:00Z", "2030-01-01T09:00:00.Z",
        "2016-12-31T23:59:60.5Z", "2016-12-31T23:59:61Z"}) {
    SCOPED_TRACE(text);
    const SqlFailure created =
        failure_of("SELECT * FROM nudge.create_reminders($1::jsonb)",
                   batch_with(R"("schedule_type": "one_time", "run_at": ")" + text + "\""));
    EXPECT_EQ(created.message, "items[1].run_at: " + bad);
    const SqlFailure ends = failure_of(
        "SELECT * FROM nudge.create_reminders($1::jsonb)",
        batch_with(R"("schedule_type": "recurring", "interval_seconds": 60, "ends_at": ")" + text +
                   "\""));
    EXPECT_EQ(ends.message, "items[1].ends_at: " + bad);
    const SqlFailure occurred =
        failure_of("SELECT nudge.emit_events($1::jsonb)",
                   events_with(R"("event_type": "e", "entity_type": "t", "entity_id": "x", )"
                               R"("occurred_at": ")" +
                               text + "\""));
    EXPECT_EQ(occurred.message, "items[1].occurred_at: " + bad);
  }
  EXPECT_EQ(count("nudge.reminders"), 0);
  EXPECT_EQ(count("nudge.events"), 0);
  // Every form REST takes is taken, on the set-based path and item by item (two items of one
  // identity), in any session zone.
  sql("SET TIME ZONE 'America/New_York'");
  for (const std::string text :
       {"2030-01-01T09:00:00Z", "2030-01-01t09:00:00.123456789z", "2030-01-01 09:00:00-05:00",
        "2030-01-01T09:00:00+23:59", "2016-12-31T23:59:60Z", "2016-12-31T23:59:60.000+00:00"}) {
    SCOPED_TRACE(text);
    const std::string plain =
        R"([{"entity_type": "t", "entity_id": ")" + text +
        R"(", "event_type": "e", "channel": "log", "schedule_type": "one_time", "run_at": ")" +
        text + "\"}]";
    if (text.ends_with("+23:59")) {  // PostgreSQL reads offsets up to 15:59 only
      EXPECT_EQ(failure_of("SELECT * FROM nudge.create_reminders($1::jsonb)", plain).message,
                "items[0].run_at: " + bad);
      continue;
    }
    EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.create_reminders($1::jsonb)", plain), 1);
    EXPECT_EQ(value<std::string>(
                  "SELECT string_agg(created::text, ' ') FROM nudge.create_reminders($1::jsonb)",
                  plain.substr(0, plain.size() - 1) + ", " + plain.substr(1)),
              "false false");
  }
}

TEST_F(InputLikeRest, BatchValuesAreTypedAsRestTypesThem) {
  struct Case {
    std::string fields, message;
  };
  const std::string one_time = R"("schedule_type": "one_time", "run_at": "2030-01-01T00:00:00Z")";
  for (const Case& c : std::vector<Case>{
           {R"("entity_id": 5, )" + one_time, "items[1].entity_id: must be a string, not a number"},
           {R"("entity_id": true, )" + one_time,
            "items[1].entity_id: must be a string, not a boolean"},
           {R"("event_type": ["e"], )" + one_time,
            "items[1].event_type: must be a string, not an array"},
           {R"("channel": 5, )" + one_time, "items[1].channel: must be a string, not a number"},
           {R"("max_fires": "3", )" + one_time,
            "items[1].max_fires: must be an integer, not a string"},
           {R"("max_attempts": 1.5, )" + one_time,
            "items[1].max_attempts: must be a whole number from 1 to 100"},
           {R"("max_attempts": 99999999999, )" + one_time,
            "items[1].max_attempts: must be a whole number from 1 to 100"},
           {R"("max_attempts": 2.0, )" + one_time,
            "items[1].max_attempts: must be a whole number from 1 to 100"},
           {R"("payload": [1], )" + one_time,
            "items[1].payload: must be a JSON object, not an array"},
           {R"("schedule_type": "one_time", "run_at": 2030)",
            "items[1].run_at: must be an RFC 3339 time string, not a number"},
           {R"("stop_condition_type": "db_check", "stop_condition_value": 7, )" + one_time,
            "items[1].stop_condition_value: must be a string, not a number"},
       }) {
    SCOPED_TRACE(c.fields);
    // A key given twice in jsonb: the last one holds, here the case's own.
    const SqlFailure f =
        failure_of("SELECT * FROM nudge.create_reminders($1::jsonb)", batch_with(c.fields));
    EXPECT_EQ(f.sqlstate, "22023") << f.message;
    EXPECT_EQ(f.message, c.message);
  }
  const SqlFailure not_object = failure_of("SELECT * FROM nudge.create_reminders('[5]')");
  EXPECT_EQ(not_object.message, "items[0]: must be a JSON object");
  EXPECT_EQ(count("nudge.reminders"), 0);

  for (const Case& c : std::vector<Case>{
           {R"("event_type": "e", "entity_type": "t", "entity_id": 5)",
            "items[1].entity_id: must be a string, not a number"},
           {R"("event_type": "e", "entity_type": "t", "entity_id": "x", "key": 5)",
            "items[1].key: must be a string, not a number"},
           {R"("event_type": "e", "entity_type": "t", "entity_id": "x", "data": [])",
            "items[1].data: must be a JSON object, not an array"},
       }) {
    SCOPED_TRACE(c.fields);
    EXPECT_EQ(failure_of("SELECT nudge.emit_events($1::jsonb)", events_with(c.fields)).message,
              c.message);
  }
  EXPECT_EQ(failure_of("SELECT nudge.emit_events('[{\"event_type\": \"e\", \"entity_type\": "
                       "\"t\", \"entity_id\": \"ok\"}, 7]')")
                .message,
            "items[1]: must be a JSON object");
  EXPECT_EQ(count("nudge.events"), 0);
}

TEST_F(InputLikeRest, UnicodeWhiteSpaceAndZeroWidthCharactersAreBlank) {
  for (const std::string blank :
       {"\u00a0", "\u2003", "\u00a0\u2003", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",
        "\u3000", "\u1680", "\u202f", "\u205f", "\u2028", "\u2029", "\u0085", " \t\n\v\f\r"}) {
    SCOPED_TRACE(blank);
    EXPECT_TRUE(value<bool>("SELECT nudge.is_blank($1)", blank));
    const SqlFailure f = failure_of(
        "SELECT nudge.create_reminder('t', $1, 'e', 'log', 'recurring', p_interval_seconds => 60)",
        blank);
    EXPECT_EQ(f.message, "entity_id: must be 1 to 200 characters, not only white space");
  }
  for (const std::string name : {"a", "\u00a0a\u200b", "\u00e9", "\u4e00"}) {
    SCOPED_TRACE(name);
    EXPECT_FALSE(value<bool>("SELECT nudge.is_blank($1)", name));
  }
  EXPECT_EQ(count("nudge.reminders"), 0);
}

TEST_F(InputLikeRest, BlankNamesAreRefusedOutsideRemindersToo) {
  sql("SELECT nudge.create_rule('keyed', 'keyed', "
      "'{\"type\": \"set_flag\", \"flag\": {\"key\": \"{{data.k}}\", \"value\": true}}')");
  const std::string flag = R"('{"type": "set_flag", "flag": {"key": "k", "value": true}}')";
  expect_refusals({
      {"SELECT nudge.create_rule(E'\\u00a0', 'e', " + flag + ")",
       "name: must be 1 to 200 characters, not only white space"},
      {"SELECT nudge.create_rule('   ', 'e', " + flag + ")", "name: must be 1 to 200"},
      {"SELECT nudge.create_rule('r', ' ', " + flag + ")", "event_type: must be 1 to 200"},
      {"SELECT nudge.update_rule((SELECT min(id) FROM nudge.rules), p_name => ' ')",
       "name: must be 1 to 200"},
      {R"(SELECT nudge.create_rule('r', 'e', '{"type": "set_flag", "flag": {"key": "  ", "value": true}}'))",
       "action.flag.key: must be a flag key of 1 to 200 characters, not only white space"},
      {"SELECT nudge.put_contact('t', '  ', 'email', 'a@example.com')",
       "entity_id: must be 1 to 200 characters, not only white space"},
      {"SELECT nudge.put_contact(E'\\u2003', 'x', 'email', 'a@example.com')", "entity_type:"},
      {"SELECT nudge.set_flag('  ', true)",
       "key: must be 1 to 200 characters, not only white space"},
      {"SELECT nudge.create_reminder(" + kLogReminder +
           "p_schedule_type => 'recurring', p_interval_seconds => 60, "
           "p_stop_condition_type => 'db_check', p_stop_condition_value => '  ')",
       "stop_condition_value: must be a flag key of 1 to 200 characters, not only white "
       "space"},
      {"SELECT nudge.emit_event('e', 't', 'x', p_key => '   ')",
       "key: must be 1 to 200 characters, not only white space"},
      {"SELECT nudge.emit_events('[{\"event_type\": \"e\", \"entity_type\": \"t\", "
       "\"entity_id\": \"x\", \"key\": \" \"}]')",
       "items[0].key: must be 1 to 200"},
  });
  // A flag key rendered blank from an event: the rule is named, on both paths of a batch.
  EXPECT_EQ(failure_of("SELECT nudge.emit_event('keyed', 't', 'x', '{\"k\": \" \"}')").sqlstate,
            "NU422");
  const SqlFailure batch = failure_of(
      "SELECT nudge.emit_events('[{\"event_type\": \"keyed\", \"entity_type\": \"t\", "
      "\"entity_id\": \"x\", \"data\": {\"k\": \" \"}}]')");
  EXPECT_EQ(batch.sqlstate, "NU422");
  EXPECT_NE(batch.message.find("action.flag.key"), std::string::npos) << batch.message;
  EXPECT_EQ(count("nudge.rules"), 1);
  EXPECT_EQ(count("nudge.status_flags"), 0);
  EXPECT_EQ(count("nudge.contacts"), 0);
  EXPECT_EQ(count("nudge.events"), 0);
}

TEST_F(InputLikeRest, BulkChangesAndReschedulesRefuseWhatRestRefuses) {
  const std::int64_t id = create_recurring("r", 60, kInAnHour);
  for (const std::string change : {"pause", "resume", "cancel"}) {
    SCOPED_TRACE(change);
    const std::string call = "SELECT nudge." + change + "_reminders(";
    expect_refusals({
        {call + "p_entity_type => '')", "entity_type: must not be empty"},
        {call + "p_entity_id => '')", "entity_id: must not be empty"},
        {call + "p_event_type => repeat('x', 201))", "event_type: must be at most 200 characters"},
        {call + "p_ids => '{-1}')", "ids[0]: must be a reminder id (a positive integer)"},
        {call + "p_ids => '{" + std::to_string(id) + ",NULL}')", "ids[1]: must be a reminder id"},
        {call + "p_ids => '{0}')", "ids[0]: must be a reminder id"},
    });
  }
  const SqlFailure nothing = failure_of("SELECT nudge.reschedule_reminder($1)", id);
  EXPECT_EQ(nothing.sqlstate, "22023");
  EXPECT_EQ(nothing.message,
            "change: nothing to change: give run_at, interval_seconds, payload, cron, timezone, "
            "max_fires or ends_at, or clear max_fires or ends_at");
  EXPECT_EQ(failure_of("SELECT nudge.reschedule_reminder(424242)").sqlstate, "22023")
      << "as REST, before the reminder is looked up";
  EXPECT_EQ(status(id), "ACTIVE");
}

// A NULL argument keeps a setting: a limit is removed by naming it in p_clear (REST's null).
TEST_F(InputLikeRest, ARescheduleRemovesOnlyTheLimitsItNames) {
  const long id = value<long>(
      "SELECT ((nudge.create_reminder(p_entity_type => 'u', p_entity_id => 'lim', "
      "p_event_type => 'e', p_channel => 'log', p_schedule_type => 'recurring', "
      "p_interval_seconds => 60, p_run_at => '2031-01-01T00:00:00Z', p_max_fires => 3, "
      "p_ends_at => '2031-02-01T00:00:00Z')).reminder).id");
  const std::string call = "SELECT nudge.reschedule_reminder(" + std::to_string(id) + ", ";
  expect_refusals({
      {call + "p_clear => '{run_at}')",
       "clear: may name max_fires and ends_at, the limits a reminder can do without"},
      {call + "p_clear => '{NULL}')",
       "clear: may name max_fires and ends_at, the limits a reminder can do without"},
      {call + "p_max_fires => 5, p_clear => '{max_fires}')",
       "max_fires: cannot be both given and cleared"},
      {call + "p_ends_at => '2032-01-01T00:00:00Z', p_clear => '{ends_at}')",
       "ends_at: cannot be both given and cleared"},
  });
  EXPECT_EQ(value<std::string>("SELECT concat_ws(' ', max_fires, ends_at IS NOT NULL) "
                               "FROM nudge.reminders WHERE id = $1",
                               id),
            "3 t");
  // The old end no longer holds the next fire back once it is removed in the same call.
  sql(call + "p_run_at => '2031-06-01T00:00:00Z', p_clear => '{ends_at}')");
  EXPECT_EQ(value<std::string>("SELECT concat_ws(' ', max_fires, ends_at IS NULL, next_run_at) "
                               "FROM nudge.reminders WHERE id = $1",
                               id),
            "3 t 2031-06-01 00:00:00+00");
  sql(call + "p_clear => '{max_fires,ends_at}')");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE id = $1 "
                        "AND max_fires IS NULL AND ends_at IS NULL AND status = 'ACTIVE'",
                        id),
            1);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.changes WHERE change = 'rescheduled'"), 2)
      << "each removal is a change the stream shows";
}

TEST_F(InputLikeRest, APreviewListsNoTimeAfterTheEndInsteadOfRefusing) {
  EXPECT_EQ(count("nudge.preview_schedule('cron', '9999-03-01T00:00:00Z', 5, "
                  "p_cron => '0 0 29 2 *')"),
            0)
      << "the next 29 February is in 10000";
  EXPECT_EQ(count("nudge.preview_schedule('cron', now(), 5, p_cron => '0 0 1 1 *', "
                  "p_run_at => '9999-06-01T00:00:00Z')"),
            0);
  EXPECT_EQ(count("nudge.preview_schedule('cron', 'infinity', 5, p_cron => '* * * * *')"), 0);
  EXPECT_EQ(count("nudge.preview_schedule('recurring', 'infinity', 5, p_interval_seconds => 60)"),
            0);
  EXPECT_EQ(value<std::string>("SELECT string_agg(t, ' ') FROM nudge.preview_schedule("
                               "'recurring', '9999-12-31T23:59:00Z', 5, "
                               "p_interval_seconds => 25) t"),
            "9999-12-31T23:59:25+00:00 9999-12-31T23:59:50+00:00");
  // Words naming a time past the end name the text.
  const SqlFailure words = failure_of(
      "SELECT nudge.resolve_moment('{\"kind\": \"local\", \"day\": 1, \"time\": \"09:00\"}', "
      "'UTC', '9999-12-31T12:00:00Z', '9999-12-31T12:00:00Z')");
  EXPECT_EQ(words.sqlstate, "22023");
  EXPECT_TRUE(words.message.starts_with("text: names a time after 9999-12-31T23:59:59Z"))
      << words.message;
}

TEST_F(InputLikeRest, APayloadsLimitIsItsStoredSizeAndTheMessageSaysSo) {
  // 5,000 levels: about 30 KB of text, more than 64 KiB as jsonb.
  std::string payload;
  for (int i = 0; i < 5000; ++i) payload += R"({"a":)";
  payload += "1" + std::string(5000, '}');
  ASSERT_LT(payload.size(), 65536u);
  const SqlFailure f = failure_of(
      "SELECT nudge.create_reminder('t', 'x', 'e', 'log', 'recurring', p_interval_seconds => 60, "
      "p_payload => $1::jsonb)",
      payload);
  EXPECT_EQ(f.message,
            "payload: must be at most 64 KiB as stored (jsonb: deep nesting makes it larger than "
            "its text)");
}

// Counts the notices the server sends on a connection.
class NoticeCounter : public pqxx::errorhandler {
 public:
  explicit NoticeCounter(pqxx::connection_base& c) : pqxx::errorhandler(c) {}
  bool operator()(const char msg[]) noexcept override {
    messages.emplace_back(msg);
    return true;
  }
  std::vector<std::string> messages;
};

TEST_F(InputLikeRest, EmittingEventsAgainInASessionSaysNothing) {
  NoticeCounter notices(conn_);
  for (int i = 0; i < 3; ++i) {
    sql("SELECT nudge.emit_events($1::jsonb)",
        R"([{"event_type": "e", "entity_type": "t", "entity_id": "x)" + std::to_string(i) + "\"}]");
    sql("SELECT * FROM nudge.create_reminders($1::jsonb)",
        R"([{"entity_type": "t", "entity_id": "x)" + std::to_string(i) +
            R"(", "event_type": "e", "channel": "log", "schedule_type": "recurring",)"
            R"( "interval_seconds": 60}])");
  }
  EXPECT_TRUE(notices.messages.empty()) << notices.messages.front();
  EXPECT_EQ(count("nudge.events"), 3);
}

TEST_F(InputLikeRest, ARuleTemplatesNumberTooLongStatesTheFieldsOwnRange) {
  const std::string remind = R"({"type": "remind", "reminder": {"event_type": "n", )"
                             R"("channel": "log", "schedule_type": "one_time", )";
  expect_refusals({
      {"SELECT nudge.create_rule('r', 'e', '" + remind + R"("delay_seconds": 99999999999}}'))",
       "action.reminder.delay_seconds: must be a whole number from 0 to 2147483647"},
      {"SELECT nudge.create_rule('r', 'e', '" + remind + R"("max_attempts": 99999999999}}'))",
       "action.reminder.max_attempts: must be a whole number from 1 to 100"},
  });
}

}  // namespace
}  // namespace nudge::test
