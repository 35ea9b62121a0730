// /v1/contacts: where reminders without a target are delivered, set, read, listed and removed.

#include <atomic>
#include <thread>
#include <vector>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using Contacts = ApiTest;

Reply del(httplib::Client& client, const std::string& path) {
  auto r = client.Delete(path.c_str());
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = json::parse(r->body, nullptr, false);
  if (r->status == 204) {
    EXPECT_TRUE(r->body.empty()) << r->body;
  }
  return out;
}

TEST_F(Contacts, PutCreatesThenReplacesAndGetListDeleteSeeIt) {
  const auto first =
      put("/v1/contacts/interviewer/INT_100/email", R"({"address":"ada@example.com"})");
  ASSERT_EQ(first.status, 201) << first.body.dump();
  EXPECT_EQ(first.body["entity_type"], "interviewer");
  EXPECT_EQ(first.body["entity_id"], "INT_100");
  EXPECT_EQ(first.body["channel"], "email");
  EXPECT_EQ(first.body["address"], "ada@example.com");
  EXPECT_TRUE(first.body["updated_at"].is_string());

  const auto got = get("/v1/contacts/interviewer/INT_100/email");
  ASSERT_EQ(got.status, 200) << got.body.dump();
  EXPECT_EQ(got.body, first.body);

  // A changed address replaces the old one: still one row, 200 this time.
  const auto second =
      put("/v1/contacts/interviewer/INT_100/email", R"({"address":"grace@example.com"})");
  ASSERT_EQ(second.status, 200) << second.body.dump();
  EXPECT_EQ(second.body["address"], "grace@example.com");
  EXPECT_EQ(get("/v1/contacts/interviewer/INT_100/email").body["address"], "grace@example.com");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.contacts"), 1);
  EXPECT_EQ(value<std::string>("SELECT address FROM nudge.contacts"), "grace@example.com");

  // Another channel of the same entity, and another entity.
  ASSERT_EQ(put("/v1/contacts/interviewer/INT_100/webhook",
                R"({"address":"https://hooks.example.com/int/100?x=1"})")
                .status,
            201);
  ASSERT_EQ(put("/v1/contacts/interviewer/INT_200/email", R"({"address":"x@example.org"})").status,
            201);
  const auto list = get("/v1/contacts/interviewer/INT_100");
  ASSERT_EQ(list.status, 200) << list.body.dump();
  ASSERT_EQ(list.body["items"].size(), 2u) << list.body.dump();
  EXPECT_EQ(list.body["items"][0]["channel"], "email");
  EXPECT_EQ(list.body["items"][0]["address"], "grace@example.com");
  EXPECT_EQ(list.body["items"][1]["channel"], "webhook");
  EXPECT_EQ(list.body["items"][1]["address"], "https://hooks.example.com/int/100?x=1");

  const auto none = get("/v1/contacts/interviewer/NOBODY");
  ASSERT_EQ(none.status, 200);
  EXPECT_EQ(none.body, json::parse(R"({"items":[]})"));

  // Delete: 204 once, then 404; the other contacts stay.
  EXPECT_EQ(del(*client_, "/v1/contacts/interviewer/INT_100/email").status, 204);
  EXPECT_EQ(del(*client_, "/v1/contacts/interviewer/INT_100/email").status, 404);
  EXPECT_EQ(get("/v1/contacts/interviewer/INT_100/email").status, 404);
  EXPECT_EQ(get("/v1/contacts/interviewer/INT_100").body["items"].size(), 1u);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.contacts"), 2);
}

// One of twenty PUTs at once of a new contact created it (explore32a F6: 3 to 15 said 201).
TEST_F(Contacts, TwentyConcurrentPutsOfANewContactCreateItOnce) {
  std::atomic<int> created{0}, replaced{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&] {
      httplib::Client c("127.0.0.1", port_);
      const auto r =
          c.Put("/v1/contacts/race/C1/email", R"({"address":"a@example.com"})", "application/json");
      if (r && r->status == 201) ++created;
      if (r && r->status == 200) ++replaced;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created, 1);
  EXPECT_EQ(replaced, 19);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.contacts"), 1);
}

TEST_F(Contacts, PathSegmentsArePercentDecoded) {
  const auto r =
      put("/v1/contacts/team%20lead/J%C3%BCrgen%2B1/email", R"({"address":"j@example.de"})");
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(r.body["entity_type"], "team lead");
  EXPECT_EQ(r.body["entity_id"], "Jürgen+1");
  EXPECT_EQ(value<std::string>("SELECT entity_id FROM nudge.contacts"), "Jürgen+1");
  EXPECT_EQ(get("/v1/contacts/team%20lead/J%C3%BCrgen%2B1/email").status, 200);
  EXPECT_EQ(get("/v1/contacts/team%20lead/J%C3%BCrgen%2B1").body["items"].size(), 1u);
  // 200 characters (not bytes) are allowed.
  std::string long_id;
  for (int i = 0; i < 200; ++i) long_id += "%C3%A9";  // é
  EXPECT_EQ(put("/v1/contacts/u/" + long_id + "/email", R"({"address":"e@example.com"})").status,
            201);
}

TEST_F(Contacts, GetOfAMissingContactIs404) {
  const auto r = get("/v1/contacts/user/1/email");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body["error"]["code"], "not_found");
}

struct BadContact {
  std::string method, path, body;
  int status;
  std::string field;
};

TEST_F(Contacts, BadInputIsRejectedNamingTheFieldAndWritesNothing) {
  const std::string k201(201, 'x');
  const std::string k2049 = "https://example.com/" + std::string(2029, 'a');
  const std::vector<BadContact> cases = {
      {"PUT", "/v1/contacts/u/1/sms", R"({"address":"a@example.com"})", 400, "channel"},
      {"PUT", "/v1/contacts/u/1/log", R"({"address":"a@example.com"})", 400, "channel"},
      {"GET", "/v1/contacts/u/1/sms", "", 400, "channel"},
      {"DELETE", "/v1/contacts/u/1/pager", "", 400, "channel"},
      {"PUT", "/v1/contacts/" + k201 + "/1/email", R"({"address":"a@example.com"})", 400,
       "entity_type"},
      {"PUT", "/v1/contacts/u/" + k201 + "/email", R"({"address":"a@example.com"})", 400,
       "entity_id"},
      {"GET", "/v1/contacts/u/" + k201, "", 400, "entity_id"},
      {"PUT", "/v1/contacts/u/1/email", R"({"address":"not-an-address"})", 400, "address"},
      {"PUT", "/v1/contacts/u/1/email", R"({"address":"a b@example.com"})", 400, "address"},
      {"PUT", "/v1/contacts/u/1/webhook", R"({"address":"ftp://example.com/x"})", 400, "address"},
      {"PUT", "/v1/contacts/u/1/webhook", R"({"address":"a@example.com"})", 400, "address"},
      {"PUT", "/v1/contacts/u/1/webhook", R"({"address":")" + k2049 + "\"}", 400, "address"},
      // Sent as written, as a target is: not a template.
      {"PUT", "/v1/contacts/u/1/webhook", R"({"address":"https://example.com/{{entity_id}}"})", 400,
       "address"},
      {"PUT", "/v1/contacts/u/1/email", R"({"address":""})", 400, "address"},
      {"PUT", "/v1/contacts/u/1/email", R"({"address":null})", 400, "address"},
      {"PUT", "/v1/contacts/u/1/email", R"({"address":5})", 400, "address"},
      {"PUT", "/v1/contacts/u/1/email", R"({})", 400, "address"},
      {"PUT", "/v1/contacts/u/1/email", R"({"address":"a@example.com","adress":"x"})", 400,
       "adress"},
      {"PUT", "/v1/contacts/u/1/email", R"([1])", 400, "body"},
      {"PUT", "/v1/contacts/u/1/email", R"({nope)", 400, "body"},
      {"PUT", "/v1/contacts/u/1/email?x=1", R"({"address":"a@example.com"})", 400, "x"},
      {"POST", "/v1/contacts/u/1/email", R"({"address":"a@example.com"})", 405, ""},
      {"PUT", "/v1/contacts/u/1", R"({"address":"a@example.com"})", 405, ""},
      {"GET", "/v1/contacts/u", "", 404, ""},
      {"GET", "/v1/contacts/u/1/email/extra", "", 404, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method + " " + c.path.substr(0, 80) + " " + c.body.substr(0, 80));
    const Reply r = c.method == "DELETE" ? del(*client_, c.path) : send(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << r.body.dump();
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << "not a JSON error body";
    EXPECT_EQ(r.error_field(), c.field) << r.body.dump();
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.contacts"), 0);
  EXPECT_TRUE(api_->running());
}

TEST_F(Contacts, ABadNewAddressKeepsTheOldOne) {
  ASSERT_EQ(put("/v1/contacts/u/1/email", R"({"address":"a@example.com"})").status, 201);
  const auto r = put("/v1/contacts/u/1/email", R"({"address":"https://example.com/"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_field(), "address");
  EXPECT_EQ(get("/v1/contacts/u/1/email").body["address"], "a@example.com");
}

}  // namespace
}  // namespace nudge::test

namespace nudge::test {
namespace {

// curl -X PUT -d '{...}' sends JSON labelled as a form; the body is still the JSON object, and
// a real query string is still checked.
TEST_F(Contacts, AJsonBodySentAsAFormAsCurlDoesIsAccepted) {
  auto r = client_->Put("/v1/contacts/interviewer/INT_100/email",
                        R"({"address": "ann@example.com"})", "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  const auto bad = put("/v1/contacts/interviewer/INT_100/email?x=1", R"({"address":"a@b.co"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["field"], "x");
}

}  // namespace
}  // namespace nudge::test
