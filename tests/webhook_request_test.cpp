// What a webhook attempt sends, built without a network: Nudge's own POST, or the reminder's own
// request as the claim rendered it, with its secrets filled in from the worker's configuration.

#include "webhook_request.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace nudge {
namespace {

constexpr char kToken[] = "xoxb-0123456789-secret";

Fire fire(std::optional<std::string> request) {
  Fire f;
  f.id = 7;
  f.entity_type = "user";
  f.entity_id = "U1";
  f.event_type = "nag";
  f.channel = "webhook";
  f.target = "http://127.0.0.1/hook";
  f.payload_json = R"({"a": 1})";
  f.scheduled_for = "2026-11-22 09:00:00+00";
  f.attempt = 2;
  f.request = std::move(request);
  return f;
}

// A request as nudge.rendered_request returns it.
std::string rendered(const nlohmann::json& request) {
  return request.dump();
}

TEST(WebhookRequest, WithoutItsOwnRequestIsNudgesPostOfTheFire) {
  const WebhookRequest r = webhook_request(fire(std::nullopt), "nudge-7-x", {});
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_TRUE(r.headers.empty());
  ASSERT_TRUE(r.body);
  EXPECT_EQ(*r.body, R"({"reminder_id":7,"entity_type":"user","entity_id":"U1",)"
                     R"("event_type":"nag","scheduled_for":"2026-11-22T09:00:00Z","attempt":2,)"
                     R"("idempotency_key":"nudge-7-x","payload":{"a": 1}})");
}

TEST(WebhookRequest, ItsOwnRequestSendsItsMethodBodyAndHeadersWithSecretsFilledIn) {
  const WebhookRequest r = webhook_request(
      fire(rendered(
          {{"method", "PUT"},
           {"headers",
            {{"Authorization", "Bearer {{ secret.api }}"}, {"X-Empty", ""}, {"X-Plain", "v"}}},
           {"content_type", "application/vnd.api+json"},
           {"body", R"({"id": 7})"}})),
      "k", {{"api", {kToken, {"127.0.0.1"}}}});
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.method, "PUT");
  ASSERT_TRUE(r.body);
  EXPECT_EQ(*r.body, R"({"id": 7})");
  EXPECT_EQ(r.content_type, "application/vnd.api+json");
  EXPECT_EQ(r.headers, (std::vector<std::string>{"Authorization: Bearer " + std::string(kToken),
                                                 "X-Empty;", "X-Plain: v"}));
  EXPECT_EQ(r.secrets, std::vector<std::string>{kToken});
}

TEST(WebhookRequest, GetAndDeleteHaveNoBody) {
  for (const std::string method : {"GET", "DELETE"}) {
    const WebhookRequest r = webhook_request(fire(rendered({{"method", method}})), "k", {});
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(r.method, method);
    EXPECT_FALSE(r.body) << method;
  }
}

TEST(WebhookRequest, PostPutAndPatchWithoutABodySendAnEmptyOneWithoutAType) {
  for (const std::string method : {"POST", "PUT", "PATCH"}) {
    const WebhookRequest r = webhook_request(fire(rendered({{"method", method}})), "k", {});
    EXPECT_TRUE(r.error.empty()) << r.error;
    ASSERT_TRUE(r.body) << method;
    EXPECT_EQ(*r.body, "");
    EXPECT_EQ(r.content_type, "");
  }
}

TEST(WebhookRequest, ASecretThisWorkerLacksIsAnErrorNamingTheHeaderAndTheSetting) {
  const WebhookRequest r =
      webhook_request(fire(rendered({{"headers", {{"Authorization", "Basic {{secret.twilio}}"}}}})),
                      "k", {{"slack", {kToken, {"127.0.0.1"}}}});
  EXPECT_EQ(r.error,
            "request.headers.Authorization: secret \"twilio\" is not configured in this worker "
            "(set [secrets] twilio or NUDGE_SECRETS_TWILIO)");
  EXPECT_EQ(r.error.find(kToken), std::string::npos);
}

// Whoever may create a reminder chooses its target: a header sends a secret only to the hosts
// configured for it (explore29a #1: any write token sent every secret to a receiver of its own).
TEST(WebhookRequest, ASecretGoesOnlyToItsHosts) {
  const auto with = [](const std::string& target, std::vector<std::string> hosts) {
    Fire f = fire(rendered({{"headers", {{"Authorization", "Bearer {{secret.api}}"}}}}));
    f.target = target;
    return webhook_request(f, "k", {{"api", {kToken, std::move(hosts)}}});
  };
  EXPECT_EQ(with("https://api.example.com/x", {"api.example.com"}).error, "");
  EXPECT_EQ(with("https://API.Example.com./x", {"api.example.com"}).error, "");
  EXPECT_EQ(with("https://eu.api.example.com/x", {"*.example.com"}).error, "");
  EXPECT_EQ(with("https://evil.example/x", {"api.example.com"}).error,
            "request.headers.Authorization: secret \"api\" may not be sent to evil.example (a "
            "header sends a secret only to the hosts of [secret_hosts] api, "
            "NUDGE_SECRET_HOSTS_API)");
  EXPECT_NE(with("https://example.com/x", {"*.example.com"}).error, "");  // not the domain itself
  EXPECT_NE(with("https://api.example.com.evil.example/x", {"api.example.com"}).error, "");
  EXPECT_NE(with("https://user@evil.example/?h=api.example.com", {"api.example.com"}).error, "");
  EXPECT_NE(with("https://api.example.com/x", {}).error, "");  // none: in no header
  const WebhookRequest refused = with("https://evil.example/x", {"api.example.com"});
  EXPECT_TRUE(refused.headers.empty());
  EXPECT_EQ(refused.error.find(kToken), std::string::npos);
}

TEST(WebhookRequest, ARequestTheDatabaseCouldNotRenderIsItsError) {
  const WebhookRequest r = webhook_request(
      fire(rendered({{"method", "POST"}, {"error", "request.body: renders to more than 1 MiB"}})),
      "k", {});
  EXPECT_EQ(r.error, "request.body: renders to more than 1 MiB");
}

TEST(WebhookRequest, AHeaderThatIsNotATemplateIsAnError) {
  const WebhookRequest r =
      webhook_request(fire(rendered({{"headers", {{"X-A", "{{payload.x}}"}}}})), "k", {});
  EXPECT_NE(r.error.find("request.headers.X-A: {{payload.x}} cannot be used in a header"),
            std::string::npos)
      << r.error;
}

}  // namespace
}  // namespace nudge
