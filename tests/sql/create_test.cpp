// nudge.create_reminder: idempotent per identity (also under 32 concurrent identical calls),
// every bad input rejected with 22023 naming the field and nothing written, and a reminder whose
// stop flag is already true created COMPLETED.

#include <atomic>
#include <barrier>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class CreateTest : public LifecycleTest {};

TEST_F(CreateTest, SameIdentityReturnsTheExistingReminder) {
  const auto [created, id] = create(recurring_args("u1", 60));
  EXPECT_TRUE(created);
  const auto [created_again, id_again] = create(recurring_args("u1", 60));
  EXPECT_FALSE(created_again);
  EXPECT_EQ(id_again, id);
  // Even with other schedule details, the identity decides.
  const auto [created_third, id_third] = create(one_time_args("u1", kInAnHour));
  EXPECT_FALSE(created_third);
  EXPECT_EQ(id_third, id);
  EXPECT_EQ(count("nudge.reminders"), 1);
  EXPECT_EQ(status(id), "ACTIVE");
  EXPECT_EQ(reminder(id)["schedule_type"].as<std::string>(), "recurring");
}

TEST_F(CreateTest, OtherIdentitiesGetTheirOwnReminders) {
  const std::int64_t a = create_one_time("u1");
  const std::int64_t b = create_one_time("u2");
  const auto [created, c] = create(
      "p_entity_type => 'user', p_entity_id => 'u1', p_event_type => 'other', p_channel => 'log',"
      " p_schedule_type => 'one_time', p_run_at => now()");
  const auto [created_d, d] = create(
      "p_entity_type => 'team', p_entity_id => 'u1', p_event_type => 'nudge', p_channel => 'log',"
      " p_schedule_type => 'one_time', p_run_at => now()");
  EXPECT_TRUE(created);
  EXPECT_TRUE(created_d);
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  EXPECT_EQ(count("nudge.reminders"), 4);
}

TEST_F(CreateTest, PausedReminderStillHoldsItsIdentity) {
  const std::int64_t id = create_recurring("u1", 60);
  sql("SELECT nudge.pause_reminder($1)", id);
  const auto [created, again] = create(recurring_args("u1", 60));
  EXPECT_FALSE(created);
  EXPECT_EQ(again, id);
  EXPECT_EQ(count("nudge.reminders"), 1);
}

TEST_F(CreateTest, NewReminderCanBeCreatedOnceTheOldOneCompleted) {
  const std::int64_t first = create_one_time("u1");
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  ASSERT_EQ(finish("w1", fires), 1);
  ASSERT_EQ(status(first), "COMPLETED");

  const auto [created, second] = create(one_time_args("u1"));
  EXPECT_TRUE(created);
  EXPECT_NE(second, first);
  EXPECT_EQ(status(second), "ACTIVE");
  EXPECT_EQ(status(first), "COMPLETED");
  EXPECT_EQ(count("nudge.reminders"), 2);
}

TEST_F(CreateTest, NewReminderCanBeCreatedOnceTheOldOneWasCancelled) {
  const std::int64_t first = create_recurring("u1", 60);
  sql("SELECT nudge.cancel_reminder($1)", first);

  const auto [created, second] = create(recurring_args("u1", 60));
  EXPECT_TRUE(created);
  EXPECT_NE(second, first);
  EXPECT_EQ(status(second), "ACTIVE");
  // And that one is now the live one.
  const auto [created_again, again] = create(recurring_args("u1", 60));
  EXPECT_FALSE(created_again);
  EXPECT_EQ(again, second);
}

TEST_F(CreateTest, ConcurrentIdenticalCreatesMakeExactlyOneReminder) {
  constexpr int kThreads = 32;
  constexpr int kRounds = 3;  // a few identities, to give the race several chances
  for (int round = 0; round < kRounds; ++round) {
    const std::string entity = "race" + std::to_string(round);
    std::vector<std::unique_ptr<pqxx::connection>> conns;
    for (int i = 0; i < kThreads; ++i) {
      conns.push_back(std::make_unique<pqxx::connection>(db_.url()));
    }
    std::barrier start(kThreads);
    std::vector<int> created(kThreads, -1);
    std::vector<std::int64_t> ids(kThreads, 0);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        try {
          pqxx::connection& c = *conns[i];
          start.arrive_and_wait();
          pqxx::work tx(c);
          const pqxx::row r =
              tx.exec1("SELECT created, (reminder).id FROM nudge.create_reminder(" +
                       recurring_args(entity, 60) + stop_on("feedback_" + entity) + ")");
          tx.commit();
          created[i] = r[0].as<bool>() ? 1 : 0;
          ids[i] = r[1].as<std::int64_t>();
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();

    int created_count = 0;
    for (int i = 0; i < kThreads; ++i) {
      ASSERT_EQ(errors[i], "") << "thread " << i;
      created_count += created[i];
      EXPECT_EQ(ids[i], ids[0]) << "thread " << i;
    }
    EXPECT_EQ(created_count, 1) << "round " << round;
    EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE entity_id = $1", entity), 1);
  }
}

// One bad input: the extra/replaced named arguments and the field the error must name.
struct BadInput {
  const char* name;
  std::string args;
  const char* field;
};

std::string args_with(const std::string& entity_type, const std::string& entity_id,
                      const std::string& event_type, const std::string& rest) {
  return "p_entity_type => " + entity_type + ", p_entity_id => " + entity_id +
         ", p_event_type => " + event_type + ", " + rest;
}

const std::string kRecurringRest =
    "p_channel => 'log', p_schedule_type => 'recurring', p_interval_seconds => 60";

std::string recurring_plus(const std::string& extra) {
  return args_with("'user'", "'u1'", "'nudge'", kRecurringRest + ", " + extra);
}

std::string channel_target(const std::string& channel, const std::string& target) {
  return args_with("'user'", "'u1'", "'nudge'",
                   "p_channel => '" + channel +
                       "', p_schedule_type => 'recurring', p_interval_seconds => 60, "
                       "p_target => " +
                       target);
}

std::vector<BadInput> BadInputs() {
  const std::string s201 = "repeat('x', 201)";
  return {
      {"entity_type_empty", args_with("''", "'u1'", "'nudge'", kRecurringRest), "entity_type"},
      {"entity_type_201", args_with(s201, "'u1'", "'nudge'", kRecurringRest), "entity_type"},
      {"entity_type_null", args_with("NULL", "'u1'", "'nudge'", kRecurringRest), "entity_type"},
      {"entity_id_empty", args_with("'user'", "''", "'nudge'", kRecurringRest), "entity_id"},
      {"entity_id_201", args_with("'user'", s201, "'nudge'", kRecurringRest), "entity_id"},
      {"event_type_empty", args_with("'user'", "'u1'", "''", kRecurringRest), "event_type"},
      {"event_type_201", args_with("'user'", "'u1'", s201, kRecurringRest), "event_type"},
      // Only white space is as empty as ''.
      {"entity_type_blank", args_with("'   '", "'u1'", "'nudge'", kRecurringRest), "entity_type"},
      {"entity_id_blank", args_with("'user'", "E'\\t \\n'", "'nudge'", kRecurringRest),
       "entity_id"},
      {"event_type_blank", args_with("'user'", "'u1'", "E' \\r\\n'", kRecurringRest), "event_type"},
      {"channel_unknown",
       args_with("'user'", "'u1'", "'nudge'",
                 "p_channel => 'sms', p_schedule_type => 'recurring', p_interval_seconds => 60"),
       "channel"},
      {"channel_null",
       args_with("'user'", "'u1'", "'nudge'",
                 "p_channel => NULL, p_schedule_type => 'recurring', p_interval_seconds => 60"),
       "channel"},
      {"schedule_type_unknown",
       args_with("'user'", "'u1'", "'nudge'",
                 "p_channel => 'log', p_schedule_type => 'weekly', p_run_at => now()"),
       "schedule_type"},
      {"schedule_type_null",
       args_with("'user'", "'u1'", "'nudge'",
                 "p_channel => 'log', p_schedule_type => NULL, p_run_at => now()"),
       "schedule_type"},
      {"one_time_without_run_at",
       args_with("'user'", "'u1'", "'nudge'", "p_channel => 'log', p_schedule_type => 'one_time'"),
       "run_at"},
      {"one_time_with_interval",
       args_with("'user'", "'u1'", "'nudge'",
                 "p_channel => 'log', p_schedule_type => 'one_time', p_run_at => now(),"
                 " p_interval_seconds => 60"),
       "interval_seconds"},
      {"recurring_without_interval",
       args_with("'user'", "'u1'", "'nudge'", "p_channel => 'log', p_schedule_type => 'recurring'"),
       "interval_seconds"},
      {"recurring_zero_interval",
       args_with("'user'", "'u1'", "'nudge'",
                 "p_channel => 'log', p_schedule_type => 'recurring', p_interval_seconds => 0"),
       "interval_seconds"},
      {"recurring_negative_interval",
       args_with("'user'", "'u1'", "'nudge'",
                 "p_channel => 'log', p_schedule_type => 'recurring', p_interval_seconds => -60"),
       "interval_seconds"},
      {"recurring_interval_over_366_days",
       args_with("'user'", "'u1'", "'nudge'",
                 "p_channel => 'log', p_schedule_type => 'recurring',"
                 " p_interval_seconds => 31622401"),
       "interval_seconds"},
      {"stop_value_without_type", recurring_plus("p_stop_condition_value => 'flag'"),
       "stop_condition_type"},
      {"stop_type_unknown",
       recurring_plus("p_stop_condition_type => 'http_check', p_stop_condition_value => 'flag'"),
       "stop_condition_type"},
      {"db_check_without_value", recurring_plus("p_stop_condition_type => 'db_check'"),
       "stop_condition_value"},
      {"db_check_empty_value",
       recurring_plus("p_stop_condition_type => 'db_check', p_stop_condition_value => ''"),
       "stop_condition_value"},
      {"db_check_value_201",
       recurring_plus("p_stop_condition_type => 'db_check', p_stop_condition_value => " + s201),
       "stop_condition_value"},
      {"max_fires_zero", recurring_plus("p_max_fires => 0"), "max_fires"},
      {"max_fires_negative", recurring_plus("p_max_fires => -3"), "max_fires"},
      {"ends_at_before_run_at",
       recurring_plus("p_run_at => now() + interval '1 hour', p_ends_at => now()"), "ends_at"},
      {"ends_at_before_default_run_at", recurring_plus("p_ends_at => now() - interval '1 second'"),
       "ends_at"},
      {"ends_at_before_one_time_run_at",
       args_with("'user'", "'u1'", "'nudge'",
                 "p_channel => 'log', p_schedule_type => 'one_time',"
                 " p_run_at => now() + interval '1 hour', p_ends_at => now()"),
       "ends_at"},
      {"payload_array", recurring_plus("p_payload => '[1, 2]'::jsonb"), "payload"},
      {"payload_string", recurring_plus("p_payload => '\"hello\"'::jsonb"), "payload"},
      {"payload_json_null", recurring_plus("p_payload => 'null'::jsonb"), "payload"},
      {"payload_sql_null", recurring_plus("p_payload => NULL"), "payload"},
      {"payload_over_64_kib",
       recurring_plus("p_payload => jsonb_build_object('text', repeat('x', 70000))"), "payload"},
      {"target_over_2048", recurring_plus("p_target => repeat('t', 2049)"), "target"},
      // Targets a worker would refuse at every fire.
      {"email_non_ascii", channel_target("email", "'ünï@exämple.com'"), "target"},
      {"email_double_dot", channel_target("email", "'a..b@example.com'"), "target"},
      {"webhook_port_over_65535", channel_target("webhook", "'http://example.com:99999/'"),
       "target"},
      {"webhook_port_0", channel_target("webhook", "'http://example.com:0/'"), "target"},
      {"webhook_host_with_colons", channel_target("webhook", "'http://a:b:c/'"), "target"},
      // A log reminder's fires go to the worker's log: a target would be ignored.
      {"log_with_target", channel_target("log", "'http://127.0.0.1:18777/'"), "target"},
  };
}

TEST_F(CreateTest, BadInputIsRejectedNamingTheFieldAndWritesNothing) {
  for (const BadInput& bad : BadInputs()) {
    SCOPED_TRACE(bad.name);
    const SqlFailure f = failure_of("SELECT * FROM nudge.create_reminder(" + bad.args + ")");
    EXPECT_EQ(f.sqlstate, "22023") << f.message;
    EXPECT_TRUE(f.message.starts_with(std::string(bad.field) + ": "))
        << "message \"" << f.message << "\" should start with \"" << bad.field << ": \"";
    EXPECT_EQ(count("nudge.reminders"), 0);
  }
  // The same calls made valid do work, so each rejection above was for its own field.
  EXPECT_TRUE(create(recurring_plus("p_max_fires => 1")).first);
}

TEST_F(CreateTest, BadInputNamesTheFieldInTheColumnDiagnostic) {
  // libpqxx 6 does not expose the COLUMN field; read it inside the server instead.
  sql(R"(CREATE FUNCTION pg_temp.rejected_column(q text) RETURNS text LANGUAGE plpgsql AS $$
         DECLARE c text;
         BEGIN
           EXECUTE q;
           RETURN '(no error)';
         EXCEPTION WHEN invalid_parameter_value THEN
           GET STACKED DIAGNOSTICS c = COLUMN_NAME;
           RETURN c;
         END $$)");
  for (const BadInput& bad : BadInputs()) {
    SCOPED_TRACE(bad.name);
    pqxx::work tx(conn_);
    const std::string column =
        tx.exec_params1("SELECT pg_temp.rejected_column($1)",
                        "SELECT * FROM nudge.create_reminder(" + bad.args + ")")[0]
            .as<std::string>();
    EXPECT_EQ(column, bad.field);
  }
}

// A batch item's value of the wrong type is named like any other bad value.
TEST_F(CreateTest, ABatchItemOfTheWrongTypeIsNamedWithItsIndexAndField) {
  const auto item = [](const std::string& id, const std::string& extra) {
    return R"({"entity_type": "u", "entity_id": ")" + id +
           R"(", "event_type": "e", "channel": "log", "schedule_type": "recurring", )" +
           R"("interval_seconds": 60)" + extra + "}";
  };
  for (const auto& [bad, field] : std::vector<std::pair<std::string, std::string>>{
           {R"("run_at": "not a time")", "run_at"},
           {R"("ends_at": "2027-13-01T00:00:00Z")", "ends_at"},
           {R"("interval_seconds": "abc")", "interval_seconds"},
           {R"("max_fires": 1.5)", "max_fires"},
           {R"("max_attempts": 99999999999)", "max_attempts"}}) {
    SCOPED_TRACE(bad);
    const SqlFailure f = failure_of("SELECT * FROM nudge.create_reminders($1::jsonb)",
                                    "[" + item("1", "") + ", " + item("2", ", " + bad) + "]");
    EXPECT_EQ(f.sqlstate, "22023") << f.message;
    EXPECT_TRUE(f.message.starts_with("items[1]." + field + ": ")) << f.message;
  }
  EXPECT_EQ(count("nudge.reminders"), 0);
}

// A batch takes what the REST API takes: an unknown key is refused, not ignored, and
// interval_minutes stands for interval_seconds. Each bad item rejects the whole batch, naming
// it; both the set-based path and the exact one say the same.
// A JSON null for an item's payload or request is the same as leaving it out, as REST reads it,
// on the batch's set-wise path and on its item-by-item one (a duplicate identity sends it there).
TEST_F(CreateTest, ABatchItemsNullPayloadAndRequestAreLeftOut) {
  const std::string item = R"({"entity_type": "u", "entity_id": "n", "event_type": "e",
      "channel": "webhook", "target": "https://example.com/h", "schedule_type": "recurring",
      "interval_seconds": 60, "payload": null, "request": null})";
  for (const std::string& items : {"[" + item + "]", "[" + item + ", " + item + "]"}) {
    SCOPED_TRACE(items);
    const pqxx::result r =
        sql("SELECT c.created, (c.reminder).payload::text, (c.reminder).request IS NULL "
            "FROM nudge.create_reminders($1::jsonb) c ORDER BY c.item",
            items);
    ASSERT_GE(r.size(), 1u);
    EXPECT_EQ(r[0][1].as<std::string>(), "{}");
    EXPECT_TRUE(r[0][2].as<bool>());
    sql("DELETE FROM nudge.reminders");
  }
}

// A refused email address is told what it must be (explore30a F8: "ops@mailhost" was told "in
// plain ASCII"); more than 64 characters before the @ is refused here, not by the relay at each
// fire.
TEST_F(CreateTest, ARefusedEmailAddressIsToldWhatItMustBe) {
  for (const std::string& target :
       {std::string("ops@mailhost"), std::string(65, 'a') + "@example.com"}) {
    SCOPED_TRACE(target);
    const SqlFailure f = failure_of(
        "SELECT * FROM nudge.create_reminder('u', '1', 'e', 'email', 'one_time', now(), "
        "p_target => $1)",
        target);
    EXPECT_EQ(f.sqlstate, "22023") << f.message;
    EXPECT_EQ(f.message,
              "target: must be an email address like someone@example.com: plain ASCII, one @, a "
              "domain with a dot, at most 64 characters before the @ and 254 in all");
  }
  EXPECT_EQ(count("nudge.reminders"), 0);
}

// A target is sent as written, so one holding "{{" is refused for every channel with one.
TEST_F(CreateTest, ATargetHoldingAPlaceholderIsRefusedNamingTarget) {
  for (const auto& [channel, target] : std::vector<std::pair<std::string, std::string>>{
           {"webhook", "https://example.com/u/{{entity_id}}"}, {"email", "a{{b}}@example.com"}}) {
    SCOPED_TRACE(target);
    const SqlFailure f = failure_of(
        "SELECT * FROM nudge.create_reminder('u', '1', 'e', $1, 'one_time', now(), "
        "p_target => $2)",
        channel, target);
    EXPECT_EQ(f.sqlstate, "22023") << f.message;
    EXPECT_EQ(f.message,
              "target: a reminder's target is not a template; rules render {{...}} in "
              "theirs");
  }
  // One brace is a character like another.
  sql("SELECT * FROM nudge.create_reminder('u', '1', 'e', 'webhook', 'one_time', now(), "
      "p_target => 'https://example.com/{x}')");
  EXPECT_EQ(count("nudge.reminders"), 1);
}

TEST_F(CreateTest, ABatchRefusesUnknownKeysAndReadsIntervalMinutesAsRestDoes) {
  const auto item = [](const std::string& id, const std::string& fields) {
    return R"({"entity_type": "u", "entity_id": ")" + id + R"(", "event_type": "e", )" + fields +
           "}";
  };
  const std::string recurring = R"("channel": "log", "schedule_type": "recurring")";
  const std::string good = item("ok", recurring + R"(, "interval_seconds": 60)");
  for (const auto& [bad, message] : std::vector<std::pair<std::string, std::string>>{
           {recurring + R"(, "interval_seconds": 60, "bogus": 1)",
            "items[1].bogus: is not a known field"},
           {recurring + R"(, "interval_seconds": 60, "Payload": {})",
            "items[1].Payload: is not a known field"},
           {recurring + R"(, "interval_seconds": 60, "interval_minutes": 1)",
            "items[1].interval_minutes: give interval_seconds or interval_minutes, not both"},
           {recurring + R"(, "interval_minutes": 0)",
            "items[1].interval_minutes: must be 1 to 527040 (366 days)"},
           {recurring + R"(, "interval_minutes": 527041)",
            "items[1].interval_minutes: must be 1 to 527040 (366 days)"},
           // typed as REST types it: a number too long, or not a number, says so
           {recurring + R"(, "interval_minutes": 99999999999)",
            "items[1].interval_minutes: must be a whole number from 1 to 527040"},
           {recurring + R"(, "interval_minutes": "abc")",
            "items[1].interval_minutes: must be an integer, not a string"},
           {R"("channel": "log", "schedule_type": "one_time", "run_at": "2030-01-01T00:00:00Z",)"
            R"( "interval_minutes": 5)",
            "items[1].interval_minutes: is only for recurring reminders"},
           {R"("channel": "log", "schedule_type": "cron", "cron": "0 9 * * *", )"
            R"("interval_minutes": 5)",
            "items[1].interval_minutes: is not for cron reminders"},
           {R"("channel": "log", "target": "http://127.0.0.1:18777/", "schedule_type": )"
            R"("recurring", "interval_seconds": 60)",
            "items[1].target: a log reminder has no target (its fires go to the worker's log)"},
           // not rendered: sent as written, it would reach a path of "{{"
           {R"("channel": "webhook", "target": "http://127.0.0.1:18777/u/{{entity_id}}", )"
            R"("schedule_type": "recurring", "interval_seconds": 60)",
            "items[1].target: a reminder's target is not a template; rules render {{...}} in "
            "theirs"}}) {
    SCOPED_TRACE(bad);
    for (const std::string& batch : {"[" + good + ", " + item("bad", bad) + "]",
                                     // two items of one identity: the exact path
                                     "[" + good + ", " + item("bad", bad) + ", " + good + "]"}) {
      const SqlFailure f = failure_of("SELECT * FROM nudge.create_reminders($1::jsonb)", batch);
      EXPECT_EQ(f.sqlstate, "22023") << f.message;
      EXPECT_EQ(f.message, message);
    }
  }
  const SqlFailure blank =
      failure_of("SELECT * FROM nudge.create_reminders($1::jsonb)",
                 "[" + good + R"(, {"entity_type": " ", "entity_id": "b", )" +
                     R"("event_type": "e", )" + recurring + R"(, "interval_seconds": 60}])");
  EXPECT_EQ(blank.message,
            "items[1].entity_type: must be 1 to 200 characters, not only white space");
  EXPECT_EQ(count("nudge.reminders"), 0);

  // interval_minutes is read on both paths.
  const std::string every_5_minutes = item("m", recurring + R"(, "interval_minutes": 5)");
  EXPECT_EQ(value<std::string>(
                "SELECT string_agg(item || ':' || created || ':' || (reminder).interval_seconds,"
                " ' ' ORDER BY item) FROM nudge.create_reminders($1::jsonb)",
                "[" + every_5_minutes + "]"),
            "0:true:300");
  EXPECT_EQ(value<std::string>(
                "SELECT string_agg(item || ':' || created || ':' || (reminder).interval_seconds,"
                " ' ' ORDER BY item) FROM nudge.create_reminders($1::jsonb)",
                "[" + item("m2", recurring + R"(, "interval_minutes": 2)") + ", " +
                    item("m2", recurring + R"(, "interval_minutes": 2)") + "]"),
            "0:true:120 1:false:120");
}

// A batch answers each reminder as its row, as a single create does; its text, what the API
// answers, is its JSON; no row is NULL, not half an object.
TEST_F(CreateTest, ABatchAnswersRowsWhoseTextIsTheirJson) {
  const pqxx::result made =
      sql("SELECT item, created, (reminder).id, (reminder).status, "
          "nudge.reminder_json_text(reminder)::jsonb = nudge.reminder_json(reminder) "
          "FROM nudge.create_reminders($1::jsonb) ORDER BY item",
          R"([{"entity_type": "b", "entity_id": "1", "event_type": "x", "channel": "webhook",
           "target": "https://example.com/h", "schedule_type": "cron", "cron": "0 9 * * 1-5",
           "timezone": "Europe/Berlin", "payload": {"a": [1, null, "\u00e9\""]},
           "max_fires": 3, "ends_at": "2031-01-01T00:00:00Z"},
          {"entity_type": "b", "entity_id": "2", "event_type": "x", "channel": "log",
           "schedule_type": "recurring", "interval_seconds": 60}])");
  ASSERT_EQ(made.size(), 2u);
  for (const auto& row : made) {
    EXPECT_TRUE(row[1].as<bool>());
    EXPECT_EQ(row[2].as<long>(), value<long>("SELECT id FROM nudge.reminders WHERE entity_id = $1",
                                             std::to_string(row[0].as<int>() + 1)));
    EXPECT_EQ(row[3].as<std::string>(), "ACTIVE");
    EXPECT_TRUE(row[4].as<bool>());
  }
  EXPECT_TRUE(
      value<bool>("SELECT nudge.reminder_json_text(NULL::nudge.reminders) IS NULL "
                  "AND nudge.reminder_json(NULL::nudge.reminders) IS NULL"));
}

// Without its interval a recurring schedule is refused as missing it, not with a range of a value
// never given.
TEST_F(CreateTest, ARecurringScheduleWithoutItsIntervalIsRefusedAsMissingIt) {
  for (const std::string query :
       {"SELECT nudge.create_reminder(p_entity_type => 'u', p_entity_id => '1', "
        "p_event_type => 'e', p_channel => 'log', p_schedule_type => 'recurring')",
        "SELECT nudge.describe_schedule('recurring')",
        "SELECT nudge.preview_schedule('recurring', now())",
        "SELECT nudge.preview_reminder('recurring')"}) {
    const SqlFailure f = failure_of(query);
    EXPECT_EQ(f.sqlstate, "22023") << query;
    EXPECT_EQ(f.message, "interval_seconds: is required for recurring") << query;
  }
  EXPECT_EQ(
      failure_of("SELECT nudge.describe_schedule('recurring', p_interval_seconds => 0)").message,
      "interval_seconds: must be 1 to 31622400 (366 days)");
}

TEST_F(CreateTest, BoundaryInputsAreAccepted) {
  const std::string s200 = "repeat('x', 200)";
  const std::vector<std::string> good = {
      args_with(s200, s200, s200, kRecurringRest),
      args_with("'user'", "'a'", "'nudge'",
                "p_channel => 'log', p_schedule_type => 'recurring', p_interval_seconds => 1"),
      args_with("'user'", "'b'", "'nudge'",
                "p_channel => 'log', p_schedule_type => 'recurring',"
                " p_interval_seconds => 31622400"),
      args_with("'user'", "'c'", "'nudge'",
                "p_channel => 'webhook', p_schedule_type => 'one_time', p_run_at => now(),"
                " p_ends_at => now(), p_max_fires => 1, p_target => 'https://example.com/' || "
                "repeat('t', 2028)"),
      args_with("'user'", "'d'", "'nudge'",
                "p_channel => 'email', p_schedule_type => 'recurring', p_interval_seconds => 60,"
                " p_stop_condition_type => 'db_check', p_stop_condition_value => " +
                    s200 + ", p_payload => '{\"a\": [1, 2]}'::jsonb"),
  };
  for (const auto& args : good) {
    SCOPED_TRACE(args);
    EXPECT_TRUE(create(args).first);
  }
  EXPECT_EQ(count("nudge.reminders WHERE status = 'ACTIVE'"), 5);
}

TEST_F(CreateTest, RecurringWithoutRunAtIsDueAtOnce) {
  const std::int64_t id = create(
                              "p_entity_type => 'user', p_entity_id => 'u1', p_event_type => "
                              "'nudge', p_channel => 'log',"
                              " p_schedule_type => 'recurring', p_interval_seconds => 3600")
                              .second;
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].id, id);
}

TEST_F(CreateTest, ReminderWhoseStopFlagIsAlreadyTrueIsCreatedCompletedAndNeverClaimed) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', true);");
  const auto [created, id] = create(recurring_args("u1", 60) + stop_on("feedback_submitted"));
  EXPECT_TRUE(created);
  const pqxx::row r = reminder(id);
  EXPECT_EQ(r["status"].as<std::string>(), "COMPLETED");
  EXPECT_EQ(r["completed_reason"].as<std::string>(), "stop_condition");
  EXPECT_FALSE(r["finished_at"].is_null());
  EXPECT_EQ(r["fire_count"].as<int>(), 0);

  EXPECT_TRUE(claim("w1").empty());
  sql("UPDATE nudge.reminders SET next_run_at = now() - interval '1 day' WHERE id = $1", id);
  EXPECT_TRUE(claim("w1").empty());
  EXPECT_EQ(count("nudge.executions"), 0);
  EXPECT_EQ(status(id), "COMPLETED");
}

// README: "Calling the create function again with the same identity returns the existing
// reminder with created = false". A true stop flag on the second call must not change that.
TEST_F(CreateTest, SameIdentityWithATrueStopFlagStillReturnsTheLiveReminder) {
  const std::int64_t live = create_recurring("u1", 60);
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', true);");
  const auto [created, id] = create(recurring_args("u1", 60) + stop_on("feedback_submitted"));
  EXPECT_FALSE(created) << "a second reminder (id " << id << ", status " << status(id)
                        << ") was created although reminder " << live << " is live";
  EXPECT_EQ(id, live);
  EXPECT_EQ(count("nudge.reminders"), 1);
  EXPECT_EQ(status(live), "ACTIVE");
}

TEST_F(CreateTest, ReminderWhoseStopFlagIsFalseOrMissingIsCreatedActive) {
  exec_as_user("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', false);");
  const std::int64_t a = create_recurring("u1", 60, kDue, stop_on("feedback_submitted"));
  const std::int64_t b = create_recurring("u2", 60, kDue, stop_on("no_such_flag_yet"));
  EXPECT_EQ(status(a), "ACTIVE");
  EXPECT_EQ(status(b), "ACTIVE");
  EXPECT_EQ(claim("w1").size(), 2u);
}

}  // namespace
}  // namespace nudge::test
