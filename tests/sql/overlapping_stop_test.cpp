// A stop flag set true while a transaction that creates a reminder it stops is still open, or the
// other way round: the later of the two waits for the earlier to end and sees what it wrote, so
// the reminder ends COMPLETED either way (explore26a #1: it stayed ACTIVE, its flag true, until it
// came due). Every way a reminder is created is tried: the create function, a batch, an event's
// rule and a batch of events.

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using namespace std::chrono_literals;

class OverlappingStopTest : public LifecycleTest {
 protected:
  void SetUp() override {
    LifecycleTest::SetUp();
    sql(R"(SELECT nudge.create_rule('nag', 'started', '{"type": "remind", "reminder": {
          "event_type": "nag", "channel": "log", "schedule_type": "one_time", "delay_seconds": 3600,
          "stop_condition_type": "db_check", "stop_condition_value": "done:{{entity_id}}"}}'))");
  }

  // Each way to create the reminder of entity `id` (event_type nag) stopped by flag done:<id>.
  static std::vector<std::string> creates(const std::string& id) {
    const std::string item = R"({"entity_type": "interview", "entity_id": ")" + id +
                             R"(", "event_type": "nag", "channel": "log", "schedule_type":
        "one_time", "run_at": "2099-01-01T00:00:00Z", "stop_condition_type": "db_check",
        "stop_condition_value": "done:)" +
                             id + R"("})";
    const std::string event =
        R"({"event_type": "started", "entity_type": "interview", "entity_id": ")" + id + R"("})";
    return {
        "SELECT nudge.create_reminder(p_entity_type => 'interview', p_entity_id => '" + id +
            "', p_event_type => 'nag', p_channel => 'log', p_schedule_type => 'one_time',"
            " p_run_at => now() + interval '1 hour', p_stop_condition_type => 'db_check',"
            " p_stop_condition_value => 'done:" +
            id + "')",
        "SELECT nudge.create_reminders('[" + item + "]')",
        "SELECT nudge.emit_event('started', 'interview', '" + id + "')",
        "SELECT nudge.record_events('[" + event + "]')",
    };
  }

  // Whether another session waits for a lock.
  bool someone_waits() {
    return value<long>(
               "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
               " AND datname = current_database()") > 0;
  }

  // Runs `statement` in its own transaction on another thread while `open` is uncommitted:
  // it must wait for `open`, which then commits.
  void run_behind(pqxx::work& open, const std::string& statement) {
    std::string error;
    std::thread later([&] {
      try {
        pqxx::connection c(db_.url());
        pqxx::work tx(c);
        tx.exec(statement);
        tx.commit();
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
    const bool waited = wait_until(10s, [&] { return someone_waits(); });
    open.commit();
    later.join();
    EXPECT_TRUE(waited) << statement;
    EXPECT_EQ(error, "") << statement;
  }

  std::int64_t nag_id(const std::string& id) {
    return value<std::int64_t>(
        "SELECT id FROM nudge.reminders WHERE entity_id = $1 AND event_type = 'nag'", id);
  }
  pqxx::row nag(const std::string& id) {
    return sql("SELECT status, completed_reason FROM nudge.reminders"
               " WHERE entity_id = $1 AND event_type = 'nag'",
               id)
        .at(0);
  }
};

// The three ways a flag turns true (a new flag, a flag updated, nudge.set_flag), each against
// every way to create.
const char* const kFlagSets[] = {
    "INSERT INTO nudge.status_flags VALUES ('done:%', true)",
    "UPDATE nudge.status_flags SET value = true WHERE key = 'done:%'",
    "SELECT nudge.set_flag('done:%', true)",
};

std::string with_id(std::string statement, const std::string& id) {
  return statement.replace(statement.find('%'), 1, id);
}

TEST_F(OverlappingStopTest, AFlagSetWhileItsReminderIsBeingCreatedWaitsAndStopsIt) {
  int n = 0;
  for (const std::string flag_set : kFlagSets) {
    for (std::size_t way = 0; way < 4; ++way) {
      const std::string id = "a" + std::to_string(n++);
      if (flag_set.rfind("UPDATE", 0) == 0) {
        sql("INSERT INTO nudge.status_flags VALUES ($1, false)", "done:" + id);
      }
      const std::string create = creates(id)[way];
      pqxx::connection c(db_.url());
      pqxx::work starting(c);
      starting.exec(create);
      run_behind(starting, with_id(flag_set, id));
      EXPECT_EQ(nag(id)["status"].as<std::string>(), "COMPLETED") << create << "\n" << flag_set;
      EXPECT_EQ(nag(id)["completed_reason"].as<std::string>(), "stop_condition") << create;
      EXPECT_EQ(executions_of(nag_id(id)), 0);
    }
  }
}

TEST_F(OverlappingStopTest, AReminderCreatedWhileItsFlagIsBeingSetWaitsAndIsCreatedCompleted) {
  int n = 0;
  for (const std::string flag_set : kFlagSets) {
    for (std::size_t way = 0; way < 4; ++way) {
      const std::string id = "b" + std::to_string(n++);
      if (flag_set.rfind("UPDATE", 0) == 0) {
        sql("INSERT INTO nudge.status_flags VALUES ($1, false)", "done:" + id);
      }
      const std::string create = creates(id)[way];
      pqxx::connection c(db_.url());
      pqxx::work stopping(c);
      stopping.exec(with_id(flag_set, id));
      run_behind(stopping, create);
      EXPECT_EQ(nag(id)["status"].as<std::string>(), "COMPLETED") << create << "\n" << flag_set;
      EXPECT_EQ(nag(id)["completed_reason"].as<std::string>(), "stop_condition") << create;
    }
  }
}

// Each key is an entry in the server's shared lock table while its transaction lasts: one
// transaction takes at most 1,000, and creates past them still work (unguarded, as before 0149).
TEST_F(OverlappingStopTest, ATransactionTakesAtMostAThousandFlagLocks) {
  pqxx::work tx(conn_);
  tx.exec(R"(SELECT nudge.create_reminders(jsonb_agg(jsonb_build_object(
      'entity_type', 'interview', 'entity_id', 'c' || i, 'event_type', 'nag', 'channel', 'log',
      'schedule_type', 'one_time', 'run_at', '2099-01-01T00:00:00Z',
      'stop_condition_type', 'db_check', 'stop_condition_value', 'done:c' || i)))
      FROM generate_series(1, 600) i)");
  const auto locks = [&] {
    return tx
        .exec1(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND pid = pg_backend_pid()")[0]
        .as<long>();
  };
  EXPECT_EQ(locks(), 600);
  // 600 more would pass 1,000: none is taken, and every one is created.
  tx.exec(R"(SELECT nudge.create_reminders(jsonb_agg(jsonb_build_object(
      'entity_type', 'interview', 'entity_id', 'd' || i, 'event_type', 'nag', 'channel', 'log',
      'schedule_type', 'one_time', 'run_at', '2099-01-01T00:00:00Z',
      'stop_condition_type', 'db_check', 'stop_condition_value', 'done:d' || i)))
      FROM generate_series(1, 600) i)");
  EXPECT_EQ(locks(), 600);
  for (int i = 1; i <= 400; ++i) {
    tx.exec("SELECT nudge.set_flag('done:c" + std::to_string(i) + "', true)");
  }
  EXPECT_EQ(locks(), 1000);  // 400 more, held alone where it created them
  tx.commit();
  EXPECT_EQ(count("nudge.reminders WHERE event_type = 'nag' AND status = 'ACTIVE'"), 800);
  EXPECT_EQ(count("nudge.reminders WHERE event_type = 'nag' AND status = 'COMPLETED'"), 400);
}

}  // namespace
}  // namespace nudge::test
