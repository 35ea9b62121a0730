// The SSRF guard in nudge-api: a webhook target whose host is a private literal address is a 400
// naming the field (reminders, batches, rule templates, contacts); a host name is not resolved
// when it is given; [webhook] allow_private opens what it names; a bad value stops the start.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

// nudge-api as production runs it: no network opened.
class SsrfGuard : public ApiTest {
 protected:
  SsrfGuard() : ApiTest({{kAllowPrivate, ""}}) {}

  static std::string webhook(const std::string& target, const std::string& id = "u1") {
    return R"({"entity_type":"user","entity_id":")" + id +
           R"(","event_type":"e","channel":"webhook","schedule_type":"one_time",)"
           R"("run_at":"2099-01-01T00:00:00Z","target":")" +
           target + R"("})";
  }
};

class SsrfGuardOpened : public ApiTest {
 protected:
  SsrfGuardOpened() : ApiTest({{kAllowPrivate, "127.0.0.0/8"}}) {}
};

TEST_F(SsrfGuard, LiteralPrivateAddressesAreRefusedNamingTarget) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"},
      {"http://[::1]/hook", "::1 is a loopback address"},
      {"http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"},
      {"https://10.0.0.7/", "10.0.0.7 is a private address"},
      {"http://192.168.1.1/", "192.168.1.1 is a private address"},
      {"http://[::ffff:127.0.0.1]:9/", "::ffff:127.0.0.1 is a loopback address"},
      {"http://[fd00::5]/", "fd00::5 is a private address"},
      {"http://[fe80::1]/", "fe80::1 is a link-local address"},
      {"http://100.64.1.1/", "100.64.1.1 is a CGNAT (shared) address"},
      {"http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address"},
      {"http://224.0.0.1/", "224.0.0.1 is a multicast address"},
      // libcurl reads these as 127.0.0.1, and so does the guard.
      {"http://2130706433/", "127.0.0.1 is a loopback address"},
      {"http://0x7f.1/", "127.0.0.1 is a loopback address"},
      {"http://127.0.0.1./", "127.0.0.1 is a loopback address"},
      {"http://user:pw@127.0.0.1/", "127.0.0.1 is a loopback address"},
  };
  for (const auto& [target, why] : cases) {
    SCOPED_TRACE(target);
    const auto r = post("/v1/reminders", webhook(target));
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.error_field(), "target");
    EXPECT_EQ(r.body["error"]["code"], "invalid_value");
    EXPECT_EQ(r.body["error"]["message"],
              "target: refused: " + why + " (SSRF guard; [webhook] allow_private)");
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
}

TEST_F(SsrfGuard, HostNamesAndPublicAddressesAreAccepted) {
  // A name is only resolved when the worker connects; the worker checks that address.
  for (const std::string target : {"http://localhost:8080/hook", "https://hooks.example.com/x",
                                   "https://93.184.215.14/x", "http://[2606:4700::1111]/x"}) {
    SCOPED_TRACE(target);
    const auto r = post("/v1/reminders", webhook(target, target));
    EXPECT_EQ(r.status, 201) << r.body.dump();
  }
}

TEST_F(SsrfGuard, ABatchNamesTheItem) {
  const auto r = post("/v1/reminders/batch", "{\"items\": [" + webhook("https://example.com/a") +
                                                 "," + webhook("http://[::1]/b", "u2") + "]}");
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "items[1].target");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 0);
}

TEST_F(SsrfGuard, ARuleTemplatesLiteralTargetIsChecked) {
  const auto rule = [](const std::string& target) {
    return R"({"name": "n", "event_type": "e", "action": {"type": "remind", "reminder": {
      "event_type": "hook", "channel": "webhook", "schedule_type": "one_time",
      "delay_seconds": 0, "target": ")" +
           target + R"("}}})";
  };
  const auto refused = post("/v1/rules", rule("http://169.254.169.254/{{entity_id}}"));
  EXPECT_EQ(refused.status, 400) << refused.body.dump();
  EXPECT_EQ(refused.error_field(), "action.reminder.target");
  EXPECT_NE(refused.body["error"]["message"].get<std::string>().find("SSRF guard"),
            std::string::npos);

  const auto created = post("/v1/rules", rule("https://hooks.example.com/{{entity_id}}"));
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const auto changed =
      patch("/v1/rules/" + std::to_string(created.body["id"].get<long>()),
            R"({"action": )" + json::parse(rule("http://[::1]/x"))["action"].dump() + "}");
  EXPECT_EQ(changed.status, 400) << changed.body.dump();
  EXPECT_EQ(changed.error_field(), "action.reminder.target");
}

TEST_F(SsrfGuard, AWebhookContactAtAPrivateAddressIsRefusedNamingAddress) {
  const auto r = put("/v1/contacts/user/u1/webhook", R"({"address": "http://10.1.1.1/hook"})");
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_EQ(r.error_field(), "address");
  EXPECT_EQ(put("/v1/contacts/user/u1/webhook", R"({"address": "https://example.com/h"})").status,
            201);
}

TEST_F(SsrfGuardOpened, AllowPrivateOpensTheNamedRangeOnly) {
  const auto body = [](const std::string& id, const std::string& target) {
    return R"({"entity_type":"user","entity_id":")" + id +
           R"(","event_type":"e","channel":"webhook","schedule_type":"one_time",)"
           R"("run_at":"2099-01-01T00:00:00Z","target":")" +
           target + R"("})";
  };
  EXPECT_EQ(post("/v1/reminders", body("a", "http://127.0.0.1:9/x")).status, 201);
  EXPECT_EQ(post("/v1/reminders", body("b", "http://[::ffff:127.0.0.2]/x")).status, 201);
  const auto v6 = post("/v1/reminders", body("c", "http://[::1]:9/x"));
  EXPECT_EQ(v6.status, 400) << v6.body.dump();
  EXPECT_EQ(v6.error_field(), "target");
}

TEST(SsrfGuardSettings, ABadAllowPrivateStopsTheApiNamingTheSetting) {
  const auto done = run_program({program("nudge-api")},
                                {{"NUDGE_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none"},
                                 {kAllowPrivate, "127.0.0.0/8,10.0.0.1/8"}},
                                60s);
  ASSERT_TRUE(done.exit_code.has_value());
  EXPECT_EQ(*done.exit_code, 2);
  EXPECT_NE(done.err.find("NUDGE_WEBHOOK_ALLOW_PRIVATE (webhook.allow_private): item 2"),
            std::string::npos)
      << done.err;
}

}  // namespace
}  // namespace nudge::test
