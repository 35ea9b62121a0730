// Keys and names in a path are percent-encoded segments: "%2F" is a '/' inside its segment, so
// flag keys and contacts' entity ids holding '/' (which the SQL functions take) are reachable
// over REST too; they answered 404 "no such route".

#include <array>

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

// httplib keeps a '%' it cannot decode as itself: PUT /v1/flags/%zz was the flag "%zz", the same as
// /v1/flags/%25zz, and ?entity_id=%zz filtered on "%zz" (explore14a #11).
TEST_F(EncodedPath, AnEscapeThatIsNotTwoHexDigitsIsA400NamingItsParameter) {
  const std::vector<std::array<std::string, 3>> kCases = {
      {"PUT", "/v1/flags/%zz", "key"},
      {"PUT", "/v1/flags/a%2", "key"},
      {"GET", "/v1/flags/a%", "key"},
      {"GET", "/v1/reminders?entity_id=%zz", "entity_id"},
      {"GET", "/v1/reminders?entity_type=user&entity_id=a%2", "entity_id"},
      {"GET", "/v1/events?entity_id=%", "entity_id"},
      {"GET", "/v1/reminders?entity%zz=1", "entity%zz"},
      {"GET", "/v1/contacts/a%g1/b", "entity_type"}};
  for (const auto& [method, path, field] : kCases) {
    SCOPED_TRACE(method + " " + path);
    const Reply r = send(method, path, R"({"value": true})");
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), field) << r.body.dump();
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.status_flags"), 0);
  // Well-formed escapes, '+' and a '%' written %25 are read as before.
  EXPECT_EQ(put("/v1/flags/%25zz", R"({"value": true})").body["key"], "%zz");
  EXPECT_EQ(get("/v1/reminders?entity_id=a%25b+c%2B").status, 200);
}

}  // namespace
}  // namespace nudge::test
