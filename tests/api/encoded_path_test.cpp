// Keys and names in a path are percent-encoded segments: "%2F" is a '/' inside its segment, so
// flag keys and contacts' entity ids holding '/' (which the SQL functions take) are reachable
// over REST too; they answered 404 "no such route".

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using EncodedPath = ApiTest;

TEST_F(EncodedPath, AnEncodedSlashStaysInsideItsSegment) {
  const long id =
      create_one("slash", R"(,"stop_condition_type":"db_check","stop_condition_value":"a/b")");
  const auto set = put("/v1/flags/a%2Fb", R"({"value": true})");
  ASSERT_EQ(set.status, 200) << set.body.dump();
  EXPECT_EQ(set.body["key"], "a/b");
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(id)).body["status"], "COMPLETED");
  sql("INSERT INTO nudge.status_flags (key, value) VALUES ('c/d?#%', false)");
  const auto read = get("/v1/flags/c%2fd%3F%23%25");
  ASSERT_EQ(read.status, 200) << read.body.dump();
  EXPECT_EQ(read.body["key"], "c/d?#%");

  const auto contact = put("/v1/contacts/team%2Fa/b%2F1/email", R"({"address": "a@example.com"})");
  ASSERT_EQ(contact.status, 201) << contact.body.dump();
  EXPECT_EQ(contact.body["entity_type"], "team/a");
  EXPECT_EQ(contact.body["entity_id"], "b/1");
  EXPECT_EQ(get("/v1/contacts/team%2Fa/b%2F1/email").status, 200);
  EXPECT_EQ(get("/v1/contacts/team%2Fa/b%2F1").body["items"].size(), 1u);
  EXPECT_EQ(send("DELETE", "/v1/contacts/team%2Fa/b%2F1/email").status, 204);

  // A '/' that is not encoded still separates segments.
  EXPECT_EQ(get("/v1/flags/a/b").body["error"]["message"], "no such route");
  EXPECT_EQ(get("/v1/reminders%2F" + std::to_string(id)).status, 404);
}

}  // namespace
}  // namespace nudge::test
