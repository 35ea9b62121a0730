// A password in a webhook URL (a target or a contact's address) is kept for the worker and
// answered as ***: in a reminder's JSON, on the stream and in a contact's JSON.

#include "sql/lifecycle_fixture.hpp"

namespace nudge::test {
namespace {

using nlohmann::json;

constexpr char kTarget[] = "https://alice:s3cret@hooks.example.com/in?x=a@b";
constexpr char kShown[] = "https://alice:***@hooks.example.com/in?x=a@b";

class ShownAddressTest : public LifecycleTest {};

TEST_F(ShownAddressTest, APasswordInAUrlIsKeptButAnsweredAsStars) {
  const std::int64_t id =
      create(
          "p_entity_type => 'user', p_entity_id => 'u1', p_event_type => 'nag', "
          "p_channel => 'webhook', p_schedule_type => 'one_time', p_run_at => " +
          kDue + ", p_target => '" + kTarget + "'")
          .second;
  EXPECT_EQ(reminder(id)["target"].as<std::string>(), kTarget) << "the worker needs it";
  const json shown = json::parse(value<std::string>(
      "SELECT nudge.reminder_json_text(r) FROM nudge.reminders r WHERE id = $1", id));
  EXPECT_EQ(shown["target"], kShown);
  const auto fires = claim("w1");
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(value<std::string>("SELECT target FROM nudge.reminders WHERE id = $1", id), kTarget);
  // On the stream too.
  value<long>("SELECT nudge.stream_advance()");
  EXPECT_EQ(value<std::string>("SELECT r_target FROM nudge.stream_changes(0, 0, 0, "
                               "(SELECT max(pos) FROM nudge.change_batches), 100) "
                               "WHERE object_id = $1 LIMIT 1",
                               id),
            kShown);

  sql(std::string("SELECT nudge.put_contact('user', 'u2', 'webhook', '") + kTarget + "')");
  EXPECT_EQ(value<std::string>("SELECT nudge.contact_json(c)->>'address' FROM nudge.contacts c"),
            kShown);
  // Without a password (a user alone, an email address, an @ in the path) as it is.
  for (const std::string address : {"https://alice@h.example.com/", "a@example.com",
                                    "http://h.example.com/p@q", "https://h.example.com/"})
    EXPECT_EQ(value<std::string>("SELECT nudge.shown_address($1)", address), address);
}

}  // namespace
}  // namespace nudge::test
