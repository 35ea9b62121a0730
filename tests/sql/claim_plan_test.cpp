// Performance sanity, without timing anything: the claim's inner SELECT walks the partial index
// reminders_due_in_order, so its cost follows what is due, not the size of the table.

#include <string>
#include <utility>
#include <vector>

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

class ClaimPlanTest : public LifecycleTest {
 protected:
  void SetUp() override {
    sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
        " next_run_at) SELECT 'user', 'future' || g, 'nudge', 'log', 'one_time',"
        " now() + interval '1 minute' + interval '1 second' * g"
        " FROM generate_series(1, 200000) g");
    sql("INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,"
        " next_run_at) SELECT 'user', 'due' || g, 'nudge', 'log', 'one_time',"
        " now() - interval '1 second' * g FROM generate_series(1, 10) g");
    pqxx::nontransaction tx(conn_);
    tx.exec("ANALYZE nudge.reminders");
    tx.exec("ANALYZE nudge.status_flags");
  }

  // The claim's inner SELECT, taken from the installed nudge.claim_due so the test follows the
  // real query, with its parameters as $1 (limit), $2 (max attempts), $3 (misfire threshold),
  // $4 (fire_all cap) and $5 (targets passed over).
  std::string claim_inner_select() {
    const std::string src =
        value<std::string>("SELECT prosrc FROM pg_proc WHERE oid = 'nudge.claim_due'::regproc");
    const auto begin = src.find("SELECT r.ctid");
    const auto end = src.find("SKIP LOCKED", begin);
    EXPECT_NE(begin, std::string::npos) << "the claim query changed shape:\n" << src;
    EXPECT_NE(end, std::string::npos) << "the claim query changed shape:\n" << src;
    if (begin == std::string::npos || end == std::string::npos) return "";
    std::string q = src.substr(begin, end + std::string("SKIP LOCKED").size() - begin);
    const std::vector<std::pair<std::string, std::string>> params = {
        {"p_limit", "$1"},
        {"p_policy.max_attempts", "$2"},
        {"p_policy.misfire_threshold_seconds", "$3"},
        {"p_policy.fire_all_cap", "$4"},
        {"p_pass_over", "$5"}};
    for (const auto& [name, placeholder] : params) {
      for (auto at = q.find(name); at != std::string::npos; at = q.find(name, at)) {
        q.replace(at, name.size(), placeholder);
      }
    }
    return q;
  }

  // EXPLAIN of the inner SELECT under `settings`, one plan line per line.
  std::string plan(const std::string& settings, const std::string& plan_cache_mode,
                   const std::string& pass_over) {
    const std::string q = claim_inner_select();
    pqxx::work tx(conn_);
    if (!settings.empty()) tx.exec(settings);
    tx.exec("SET LOCAL plan_cache_mode = " + plan_cache_mode);
    const std::string name = "claim_inner_" + std::to_string(++prepared_);
    tx.exec("PREPARE " + name + "(integer, integer, integer, integer, text[]) AS " + q);
    std::string text;
    for (const auto& row :
         tx.exec("EXPLAIN EXECUTE " + name + "(1000, 3, 60, 100, " + pass_over + ")")) {
      text += row[0].as<std::string>() + "\n";
    }
    tx.exec("DEALLOCATE " + name);
    tx.abort();
    return text;
  }

 private:
  int prepared_ = 0;
};

TEST_F(ClaimPlanTest, ClaimWalksTheDueIndex) {
  struct Case {
    const char* name;
    const char* settings;
    const char* plan_cache_mode;
  };
  const Case cases[] = {
      // As the function runs it (its SET clauses), custom and generic plans.
      {"function_settings_custom",
       "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off;"
       " SET LOCAL enable_mergejoin = off",
       "force_custom_plan"},
      {"function_settings_generic",
       "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off;"
       " SET LOCAL enable_mergejoin = off",
       "force_generic_plan"},
      // And by the planner's own choice on analyzed statistics.
      {"default_settings_custom", "", "force_custom_plan"},
      {"default_settings_generic", "", "force_generic_plan"},
  };
  // Passing over a slow host's targets or not.
  for (const std::string pass_over : {"NULL", "'{http://slow:1,http://slow:1/%}'::text[]"}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(c.name) + " " + pass_over);
      const std::string p = plan(c.settings, c.plan_cache_mode, pass_over);
      EXPECT_NE(p.find("reminders_due_in_order"), std::string::npos) << p;
      EXPECT_EQ(p.find("Seq Scan on nudge.reminders"), std::string::npos) << p;
      EXPECT_EQ(p.find("Sort"), std::string::npos) << "the index already gives due order\n" << p;
    }
  }
}

TEST_F(ClaimPlanTest, ClaimOnTheBigTableTakesExactlyTheDueRows) {
  const auto fires = claim("w1", 1000);
  EXPECT_EQ(fires.size(), 10u);
  EXPECT_EQ(count("nudge.reminders WHERE leased_by IS NOT NULL"), 10);
  EXPECT_EQ(finish("w1", fires), 10);
  EXPECT_TRUE(claim("w1", 1000).empty());
}

}  // namespace
}  // namespace nudge::test
