// What REST shows of the SQL checks of 0046: names of only Unicode white space are refused
// wherever a name is taken (a 400 naming the field), a preview past 9999-12-31T23:59:59Z lists no
// time instead of naming a run_at the request did not give, and words naming a time past it name
// the text.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using SqlInputChecks = ApiTest;

TEST_F(SqlInputChecks, NamesOfOnlyWhiteSpaceAreRefusedWhereverANameIsTaken) {
  const std::string create = R"({"entity_type":"t","event_type":"e","channel":"log",)"
                             R"("schedule_type":"one_time","run_at":"2030-01-01T00:00:00Z",)";
  const std::string flag_rule = R"("event_type":"e","action":{"type":"set_flag",)"
                                R"("flag":{"key":"k","value":true}}})";
  ASSERT_EQ(post("/v1/rules", R"({"name":"ok",)" + flag_rule).status, 201);
  struct Case {
    std::string method, path, body, field;
  };
  for (const Case& c : std::vector<Case>{
           {"POST", "/v1/reminders", create + R"("entity_id":"\u00a0\u2003"})", "entity_id"},
           {"POST", "/v1/reminders", create + R"("entity_id":"\u200b"})", "entity_id"},
           {"POST", "/v1/reminders",
            create + R"("entity_id":"x","stop_condition_type":"db_check",)" +
                R"("stop_condition_value":"  "})",
            "stop_condition_value"},
           {"POST", "/v1/rules", R"({"name":"  ",)" + flag_rule, "name"},
           {"POST", "/v1/rules", R"({"name":"\ufeff",)" + flag_rule, "name"},
           {"PATCH", "/v1/rules/1", R"({"name":"\u3000"})", "name"},
           {"PUT", "/v1/contacts/t/%20%20/email", R"({"address":"ann@example.com"})", "entity_id"},
           {"PUT", "/v1/flags/%20%20", R"({"value":true})", "key"},
           {"POST", "/v1/events",
            R"({"event_type":"e","entity_type":"t","entity_id":"x",)"
            R"("key":"   "})",
            "key"},
       }) {
    SCOPED_TRACE(c.method + " " + c.path + " " + c.body);
    const Reply r = send(c.method, c.path, c.body);
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("not only white space"),
              std::string::npos)
        << r.body.dump();
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
  EXPECT_EQ(value<std::string>("SELECT string_agg(name, ',') FROM nudge.rules"), "ok");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.contacts"), 0);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.events"), 0);
}

TEST_F(SqlInputChecks, APreviewPastTheLastYearListsNoTimeAndWordsPastItNameTheText) {
  Reply r = post("/v1/schedules/preview", R"({"schedule_type":"cron","cron":"0 0 29 2 *",)"
                                          R"("from":"9999-03-01T00:00:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json::array());
  r = post("/v1/schedules/preview", R"({"schedule_type":"cron","cron":"0 0 1 1 *",)"
                                    R"("run_at":"9999-06-01T00:00:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json::array());
  r = post("/v1/schedules/parse", R"({"text":"every day at 9","now":"9999-12-31T12:00:00Z"})");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["times"], json::array());

  r = post("/v1/schedules/parse", R"({"text":"tomorrow at 9","now":"9999-12-31T12:00:00Z"})");
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "text") << r.body.dump();
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("after 9999-12-31T23:59:59Z"),
            std::string::npos)
      << r.body.dump();
}

TEST_F(SqlInputChecks, ARulesNumberTooLongStatesTheFieldsOwnRange) {
  const Reply r = post("/v1/rules", R"({"name":"r","event_type":"e","action":{"type":"remind",)"
                                    R"("reminder":{"event_type":"n","channel":"log",)"
                                    R"("schedule_type":"one_time","delay_seconds":99999999999}}})");
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "action.reminder.delay_seconds") << r.body.dump();
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("from 0 to 2147483647"),
            std::string::npos)
      << r.body.dump();
}

}  // namespace
}  // namespace nudge::test
