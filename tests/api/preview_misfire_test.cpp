// POST /v1/schedules/preview of a schedule whose first fire is already past: it lists what a
// worker then does under the reminder's misfire policy and the workers' [misfire] settings
// (tests/sql/preview_reminder_test.cpp covers the function's cases).

#include <string>

#include "api/api_fixture.hpp"
#include "support/processes.hpp"

namespace nudge::test {
namespace {

// The API and the worker share [misfire]: a threshold of 120 s and a cap of 3.
const std::map<std::string, std::string> kMisfire{{"NUDGE_MISFIRE_THRESHOLD_SECONDS", "120"},
                                                  {"NUDGE_MISFIRE_FIRE_ALL_CAP", "3"}};

class PreviewMisfire : public ApiTest {
 protected:
  PreviewMisfire() : ApiTest(kMisfire) {}

  // An hourly reminder of `policy` created now whose first fire was `ago` seconds ago, and the
  // preview of its schedule from its creation: the reminder's id and the fires listed at it.
  std::pair<long, long> create_and_preview(const std::string& id, const std::string& policy,
                                           int ago) {
    const std::string run_at = value<std::string>(
        "SELECT to_char((now() - $1 * interval '1 second') AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        ago);
    json schedule{{"schedule_type", "recurring"},
                  {"interval_seconds", 3600},
                  {"run_at", run_at},
                  {"misfire_policy", policy}};
    json create = schedule;
    create.update(
        {{"entity_type", "p"}, {"entity_id", id}, {"event_type", "x"}, {"channel", "log"}});
    const auto created = post("/v1/reminders", create.dump());
    EXPECT_EQ(created.status, 201) << created.body.dump();
    const std::string from = created.body["created_at"];
    schedule.update({{"from", from}, {"count", 10}});
    const auto preview = post("/v1/schedules/preview", schedule.dump());
    EXPECT_EQ(preview.status, 200) << preview.body.dump();
    long at_from = 0;
    for (const auto& t : preview.body["times"]) {
      if (value<bool>("SELECT $1::timestamptz = $2::timestamptz", t.get<std::string>(), from))
        ++at_from;
    }
    return {created.body["id"].get<long>(), at_from};
  }
};

// fire_all: the occurrences due (4, 3 hours ago to 100 s ago), the newest 3 of them (the cap);
// skip: none past the threshold (its last occurrence 200 s ago), one within it (100 s ago,
// alone or after three skipped); fire_once: one. A worker then fires as many.
TEST_F(PreviewMisfire, EachPolicyListsAtCreationWhatAWorkerThenFires) {
  const auto [all, all_listed] = create_and_preview("all", "fire_all", 3 * 3600 + 100);
  const auto [skipped, skipped_listed] = create_and_preview("skip", "skip", 3 * 3600 + 200);
  const auto [last, last_listed] = create_and_preview("last", "skip", 3 * 3600 + 100);
  const auto [late, late_listed] = create_and_preview("late", "skip", 100);
  const auto [once, once_listed] = create_and_preview("once", "fire_once", 3 * 3600 + 100);
  EXPECT_EQ(all_listed, 3);
  EXPECT_EQ(skipped_listed, 0);
  EXPECT_EQ(last_listed, 1);
  EXPECT_EQ(late_listed, 1);
  EXPECT_EQ(once_listed, 1);

  auto settings = kMisfire;
  settings["NUDGE_DATABASE_URL"] = db_.url();
  ChildProcess worker(worker_command(), settings, log_.string() + ".worker");
  const auto fired = [&](long id) {
    return value<long>("SELECT count(*) FROM nudge.executions WHERE reminder_id = $1", id);
  };
  // Every reminder has moved to its next hour: nothing more is due.
  ASSERT_TRUE(wait_until(60s, [&] {
    return value<long>("SELECT count(*) FROM nudge.reminders WHERE next_run_at > now()") == 5 &&
           value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by IS NOT NULL") == 0;
  })) << worker.log();
  EXPECT_EQ(fired(all), all_listed);
  EXPECT_EQ(fired(skipped), skipped_listed);
  EXPECT_EQ(fired(last), last_listed);
  EXPECT_EQ(fired(late), late_listed);
  EXPECT_EQ(fired(once), once_listed);
}

TEST_F(PreviewMisfire, APolicyIsCheckedAsACreateChecksIt) {
  const std::string one_time =
      R"("schedule_type": "one_time", "run_at": "2030-01-01T00:00:00Z", "misfire_policy": "skip")";
  auto r = post("/v1/schedules/preview", "{" + one_time + "}");
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.body["error"]["field"], "misfire_policy") << r.body.dump();
  const auto create = post("/v1/reminders", R"({"entity_type": "p", "entity_id": "1",
      "event_type": "x", "channel": "log", )" + one_time +
                                                "}");
  EXPECT_EQ(create.status, 400) << create.body.dump();
  EXPECT_EQ(r.body["error"], create.body["error"]);
  r = post("/v1/schedules/preview", R"({"schedule_type": "recurring", "interval_seconds": 60,
      "misfire_policy": "later"})");
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.body["error"]["field"], "misfire_policy") << r.body.dump();
}

}  // namespace
}  // namespace nudge::test
