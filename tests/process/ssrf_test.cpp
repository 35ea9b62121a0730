// The SSRF guard in a real nudge-worker: webhook targets at private addresses (literal, or a name
// that resolves to one) are failed attempts with a clear error, the receiver hears nothing, and
// [webhook] allow_private opens exactly the networks it names.

#include <string>
#include <vector>

#include "process/process_fixture.hpp"
#include "support/webhook_receiver.hpp"

namespace nudge::test {
namespace {

class SsrfGuard : public ProcessTest {
 protected:
  // A webhook reminder due now with one attempt, created over SQL (which takes any http URL:
  // the guard is the worker's); its id.
  std::int64_t create_webhook(const std::string& entity_id, const std::string& url) {
    return value<std::int64_t>(
        "SELECT (reminder).id FROM nudge.create_reminder(p_entity_type => 'ssrf',"
        " p_entity_id => $1, p_event_type => 'probe', p_channel => 'webhook',"
        " p_schedule_type => 'one_time', p_run_at => now(), p_target => $2, p_max_attempts => 1)",
        entity_id, url);
  }
  // The one attempt's outcome and error.
  std::pair<std::string, std::string> attempt_of(std::int64_t id) {
    const pqxx::row row = sql("SELECT outcome, coalesce(error, '') FROM nudge.delivery_attempts "
                              "WHERE reminder_id = $1",
                              id)
                              .at(0);
    return {row[0].as<std::string>(), row[1].as<std::string>()};
  }
  // The receiver's port, for URLs that reach it by another name.
  std::string receiver_port() const {
    return receiver_.url("").substr(std::string("http://127.0.0.1:").size());
  }
  static std::string refused(const std::string& why) {
    return "refused: " + why + " (SSRF guard; [webhook] allow_private)";
  }
  // A literal address refused: no attempt would be let through, so there is no other.
  static std::string refused_literal(const std::string& why) {
    return refused(why) + " (a literal address: another attempt cannot change that)";
  }

  WebhookReceiver receiver_;  // on 127.0.0.1
};

TEST_F(SsrfGuard, PrivateTargetsAreFailedAttemptsWithAClearError) {
  const std::string port = receiver_port();
  struct Case {
    std::string url;
    std::string error;  // exact, or empty: checked below
  };
  const std::vector<Case> cases = {
      {receiver_.url("/hook"), refused_literal("127.0.0.1 is a loopback address")},
      {"http://[::1]:" + port, refused_literal("::1 is a loopback address")},
      {"http://169.254.169.254/latest/meta-data/",
       refused_literal("169.254.169.254 is a link-local address")},
      {"http://10.1.2.3:8080/", refused_literal("10.1.2.3 is a private address")},
      {"http://[::ffff:127.0.0.1]:" + port,
       refused_literal("::ffff:127.0.0.1 is a loopback address")},
      {"http://0x7f000001:" + port + "/hook", refused_literal("127.0.0.1 is a loopback address")},
      {"http://100.64.0.1/", refused_literal("100.64.0.1 is a CGNAT (shared) address")},
      // localhost resolves to ::1 and 127.0.0.1; either may be tried first.
      {"http://localhost:" + port + "/hook", ""},
  };
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < cases.size(); ++i)
    ids.push_back(create_webhook(std::to_string(i), cases[i].url));
  start_worker({{kAllowPrivate, ""}});
  ASSERT_TRUE(wait_for_executions(static_cast<long>(cases.size()))) << all_logs();

  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].url);
    const auto [outcome, error] = attempt_of(ids[i]);
    EXPECT_EQ(outcome, "failed");
    if (!cases[i].error.empty()) {
      EXPECT_EQ(error, cases[i].error);
      EXPECT_EQ(value<long>("SELECT attempts FROM nudge.executions WHERE reminder_id = $1", ids[i]),
                1)
          << "not tried again";
    } else {
      EXPECT_TRUE(error == refused("::1 is a loopback address") ||
                  error == refused("127.0.0.1 is a loopback address"))
          << error;
    }
    EXPECT_EQ(value<std::string>("SELECT status FROM nudge.reminders WHERE id = $1", ids[i]),
              "FAILED");
  }
  EXPECT_TRUE(receiver_.requests().empty()) << "no connection reached the receiver";
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.target_hosts WHERE consecutive_failures > 0"),
            0)
      << "a refusal is the guard's, not the host's: no circuit breaker counts it";
}

TEST_F(SsrfGuard, AllowPrivateOpensTheNamedRangeOnly) {
  const std::string port = receiver_port();
  const std::int64_t open = create_webhook("open", receiver_.url("/open"));
  // localhost: ::1 is refused, 127.0.0.1 is open, so the delivery goes to 127.0.0.1.
  const std::int64_t by_name = create_webhook("by-name", "http://localhost:" + port + "/name");
  const std::int64_t still_closed = create_webhook("closed", "http://[::1]:" + port + "/closed");
  start_worker({{kAllowPrivate, "127.0.0.0/8"}});
  ASSERT_TRUE(wait_for_executions(3)) << all_logs();

  EXPECT_EQ(attempt_of(open).first, "delivered");
  EXPECT_EQ(attempt_of(by_name).first, "delivered");
  EXPECT_EQ(attempt_of(still_closed),
            std::make_pair(std::string("failed"), refused_literal("::1 is a loopback address")));
  EXPECT_EQ(receiver_.requests_to("/open").size(), 1u);
  EXPECT_EQ(receiver_.requests_to("/name").size(), 1u);
}

TEST_F(SsrfGuard, ARedirectToLoopbackIsNotFollowed) {
  // The receiver is reachable (127.0.0.1 is opened) and sends the worker on to ::1, which is not.
  const std::string port = receiver_port();
  receiver_.redirect("/moved", "http://[::1]:" + port + "/inside");
  const std::int64_t id = create_webhook("moved", receiver_.url("/moved"));
  start_worker({{kAllowPrivate, "127.0.0.1/32"}});
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  EXPECT_EQ(
      attempt_of(id),
      std::make_pair(std::string("failed"),
                     "HTTP 307 (redirects are not followed; Location: http://[::1]:" + port + ")"));
  EXPECT_EQ(receiver_.requests().size(), 1u);
}

TEST_F(SsrfGuard, ABadAllowPrivateStopsTheWorkerAtStartNamingTheSetting) {
  ChildProcess& worker = start_worker({{kAllowPrivate, "127.0.0.1/8"}});
  const auto code = worker.wait(kSlow);
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(worker.log().find("NUDGE_WEBHOOK_ALLOW_PRIVATE (webhook.allow_private)"),
            std::string::npos)
      << worker.log();
}

}  // namespace
}  // namespace nudge::test
