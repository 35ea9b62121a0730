// Email delivery end to end: real nudge-worker processes sending through a real SMTP server on
// loopback (tests/support/smtp_server.hpp: Debian's aiosmtpd, with a small Python script that
// parses every message it accepts and writes what it found as one JSON line).
// A recurring reminder mailed to its contact until its flag stops it, a relay that rejects the
// recipient, no relay at all, a worker whose relay cannot be reached beside one whose relay
// answers, and a password in the relay's URL that must never show.

#include <signal.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "process/process_fixture.hpp"
#include "support/misbehaving_relay.hpp"
#include "support/prometheus_text.hpp"
#include "support/smtp_server.hpp"

namespace nudge::test {
namespace {

using nlohmann::json;

class EmailDelivery : public ProcessTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(SmtpTestServer::kPython, X_OK), 0)
        << SmtpTestServer::kPython << " is missing (scripts/setup.sh installs it)";
  }

  void start_server(const std::string& mode = "accept") {
    server_ = std::make_unique<SmtpTestServer>(dir_, mode);
    std::string why;
    ASSERT_TRUE(server_->wait_ready(why)) << why;
  }

  static std::map<std::string, std::string> email_env(
      const std::string& smtp_url, std::map<std::string, std::string> more = {}) {
    std::map<std::string, std::string> env{{"NUDGE_EMAIL_SMTP_URL", smtp_url},
                                           {"NUDGE_EMAIL_FROM", "nudge@example.com"}};
    for (const auto& [k, v] : more) env[k] = v;
    return env;
  }

  // A one_time email reminder due now, sent to `target`; its id.
  std::int64_t create_one_time(const std::string& entity_id, const std::string& target,
                               int max_attempts) {
    return value<std::int64_t>(
        "SELECT (reminder).id FROM nudge.create_reminder(p_entity_type => 'interviewer',"
        " p_entity_id => $1, p_event_type => 'feedback_form', p_channel => 'email',"
        " p_schedule_type => 'one_time', p_run_at => now(), p_target => $2,"
        " p_payload => '{\"subject\": \"Feedback is due\"}', p_max_attempts => $3)",
        entity_id, target, max_attempts);
  }

  std::string status_of(std::int64_t id) {
    return value<std::string>("SELECT status FROM nudge.reminders WHERE id = $1", id);
  }

  // Runs `change` in a transaction that holds reminder `id` locked while no worker has it
  // leased: no attempt is in flight (every earlier one is delivered and recorded) and none can
  // be claimed until the change commits, so the next claim is the first to see it.
  void while_idle(std::int64_t id, const std::function<void(pqxx::work&)>& change) {
    const bool done = wait_until(
        kSlow,
        [&] {
          pqxx::work tx(conn_);
          if (!tx.exec_params1("SELECT leased_by IS NULL FROM nudge.reminders WHERE id = $1 "
                               "FOR UPDATE",
                               id)[0]
                   .as<bool>())
            return false;  // rolled back; try again once the attempt in flight has finished
          change(tx);
          tx.commit();
          return true;
        },
        5ms);
    ASSERT_TRUE(done) << "the reminder stayed leased\n" << all_logs();
  }

  std::string server_log() const { return server_ ? server_->log() : ""; }

  std::unique_ptr<SmtpTestServer> server_;
};

TEST_F(EmailDelivery, RecurringReminderMailsTheContactUntilItsFlagStopsIt) {
  ASSERT_NO_FATAL_FAILURE(start_server());
  const std::int64_t id = value<std::int64_t>(
      "SELECT (reminder).id FROM nudge.create_reminder(p_entity_type => 'interviewer',"
      " p_entity_id => 'INT_100', p_event_type => 'feedback_form', p_channel => 'email',"
      " p_schedule_type => 'recurring', p_interval_seconds => 2,"
      " p_payload => '{\"subject\": \"Feedback for candidate C-7 is due\","
      " \"body\": \"Please submit your feedback.\"}',"
      " p_stop_condition_type => 'db_check', p_stop_condition_value => 'feedback_submitted')");
  sql("SELECT nudge.put_contact('interviewer', 'INT_100', 'email', 'ann@example.com')");
  start_worker(email_env(server_->url()));

  // Two occurrences, two emails to ann.
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return server_->messages().size() >= 2; }, 50ms))
      << all_logs() << server_log();
  auto messages = server_->messages();
  for (std::size_t i = 0; i < 2; ++i) {
    const json& m = messages[i];
    SCOPED_TRACE("email " + std::to_string(i + 1));
    EXPECT_EQ(m["mail_from"], "nudge@example.com");
    EXPECT_EQ(m["rcpt_tos"], json::array({"ann@example.com"}));
    EXPECT_EQ(m["defects"], json::array());
    EXPECT_EQ(smtp_header(m, "from"), "nudge@example.com");
    EXPECT_EQ(smtp_header(m, "to"), "ann@example.com");
    EXPECT_EQ(smtp_header(m, "subject"), "Feedback for candidate C-7 is due");
    EXPECT_EQ(m["body"], "Please submit your feedback.");
    EXPECT_EQ(smtp_header(m, "x-nudge-reminder-id"), std::to_string(id));
    EXPECT_EQ(smtp_header(m, "x-nudge-attempt"), "1");
  }
  EXPECT_NE(smtp_header(messages[0], "message-id"), smtp_header(messages[1], "message-id"));
  EXPECT_NE(smtp_header(messages[0], "idempotency-key"),
            smtp_header(messages[1], "idempotency-key"));

  // A changed address takes effect at the next fire: plain SQL on contacts.
  std::size_t before_change = 0;
  while_idle(id, [&](pqxx::work& tx) {
    tx.exec0(
        "UPDATE nudge.contacts SET address = 'bob@example.com' WHERE entity_type = 'interviewer'"
        " AND entity_id = 'INT_100' AND channel = 'email'");
    before_change = server_->messages().size();
  });
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return server_->messages().size() > before_change; }, 50ms))
      << all_logs() << server_log();
  messages = server_->messages();
  for (std::size_t i = 0; i < before_change; ++i)
    EXPECT_EQ(messages[i]["rcpt_tos"], json::array({"ann@example.com"})) << "email " << i + 1;
  for (std::size_t i = before_change; i < messages.size(); ++i) {
    EXPECT_EQ(messages[i]["rcpt_tos"], json::array({"bob@example.com"})) << "email " << i + 1;
    EXPECT_EQ(smtp_header(messages[i], "to"), "bob@example.com") << "email " << i + 1;
    EXPECT_EQ(smtp_header(messages[i], "subject"), "Feedback for candidate C-7 is due");
  }

  // The feedback is in: the flag completes the reminder and no more emails go out.
  std::size_t sent = 0;
  while_idle(id, [&](pqxx::work& tx) {
    tx.exec0("INSERT INTO nudge.status_flags (key, value) VALUES ('feedback_submitted', true)");
    sent = server_->messages().size();
  });
  EXPECT_EQ(status_of(id), "COMPLETED");
  EXPECT_EQ(value<std::string>("SELECT completed_reason FROM nudge.reminders WHERE id = $1", id),
            "stop_condition");
  ASSERT_TRUE(wait_until(
      kSlow, [&] { return executions() >= static_cast<long>(sent); }, 50ms))
      << all_logs();
  std::this_thread::sleep_for(4s + 500ms);  // two intervals and a little: nothing more arrives
  messages = server_->messages();
  EXPECT_EQ(messages.size(), sent) << all_logs();
  EXPECT_EQ(status_of(id), "COMPLETED");

  // Each occurrence recorded once, delivered at the first attempt, one email each.
  EXPECT_EQ(executions(), static_cast<long>(sent));
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.executions WHERE reminder_id = $1 AND outcome ="
                        " 'delivered' AND attempts = 1 AND error IS NULL",
                        id),
            static_cast<long>(sent));
  // On the reminder's 2-second phase.
  EXPECT_EQ(
      value<long>("SELECT count(*) FROM nudge.executions WHERE extract(epoch FROM scheduled_for -"
                  " (SELECT min(scheduled_for) FROM nudge.executions)) % 2 <> 0"),
      0);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE reminder_id = $1 AND"
                        " outcome = 'delivered' AND status_code = 250 AND attempt = 1",
                        id),
            static_cast<long>(sent));
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.delivery_attempts"), static_cast<long>(sent));
  EXPECT_EQ(value<int>("SELECT fire_count FROM nudge.reminders WHERE id = $1", id),
            static_cast<int>(sent));
  std::set<std::string> message_ids;
  for (const auto& m : messages) message_ids.insert(smtp_header(m, "message-id"));
  EXPECT_EQ(message_ids.size(), messages.size()) << "a Message-ID per occurrence";
}

// A 550 is permanent: the reminder fails at its first attempt, though it had two (the relay
// refused the same message again before: explore15a #4).
// A worker leases no more emails than it has relay connections free: the rest stay due, so a
// cancel reaches them (explore16a #1: 100 emails leased for 4 connections, 94 sent after their
// cancel, the last 88 s later; #4: a crash charged an attempt to each).
TEST_F(EmailDelivery, AWorkerLeasesNoMoreEmailsThanItsConnectionsSoACancelReachesTheRest) {
  MisbehavingRelay relay(MisbehavingRelay::Behaviour::slow_end_of_data);
  for (int i = 0; i < 10; ++i)
    create_one_time("INT_" + std::to_string(i), "int" + std::to_string(i) + "@example.com", 3);
  start_worker(email_env(relay.url(),
                         {{"NUDGE_WORKER_CONCURRENCY", "1"}, {"NUDGE_EMAIL_CONNECTIONS", "2"}}));
  const auto leased = [&] {
    return value<long>("SELECT count(*) FROM nudge.reminders WHERE leased_by IS NOT NULL");
  };
  ASSERT_TRUE(wait_until(kSlow, [&] { return leased() > 0; })) << all_logs();
  long most = 0;
  for (int i = 0; i < 20; ++i) {
    most = std::max(most, leased());
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_LE(most, 2) << "emails leased at once for 2 connections";
  sql("SELECT nudge.cancel_reminders(p_entity_type => 'interviewer', p_status => 'ACTIVE')");
  const int sent_at_cancel = relay.messages();
  std::this_thread::sleep_for(2 * MisbehavingRelay::kEndOfDataPause + 1s);
  EXPECT_LE(relay.messages() - sent_at_cancel, 2) << "only those under way when cancelled";
}

TEST_F(EmailDelivery, ARelayRejectingTheRecipientFailsTheReminderAtOnce) {
  ASSERT_NO_FATAL_FAILURE(start_server("reject"));
  const std::int64_t id = create_one_time("INT_200", "nobody@example.com", 2);
  start_worker(email_env(server_->url(), {{"NUDGE_RETRY_BASE_DELAY_MS", "100"}}));
  ASSERT_TRUE(wait_for_executions(1)) << all_logs() << server_log();

  EXPECT_EQ(status_of(id), "FAILED");
  EXPECT_EQ(value<std::string>("SELECT completed_reason FROM nudge.reminders WHERE id = $1", id),
            "attempts_exhausted");
  const std::string last_error =
      value<std::string>("SELECT last_error FROM nudge.reminders WHERE id = $1", id);
  EXPECT_NE(last_error.find("550"), std::string::npos) << last_error;
  EXPECT_NE(last_error.find("no such user"), std::string::npos) << last_error;

  const pqxx::result attempts =
      sql("SELECT attempt, outcome, status_code, error, response FROM nudge.delivery_attempts"
          " WHERE reminder_id = $1 ORDER BY attempt",
          id);
  ASSERT_EQ(attempts.size(), 1u);
  for (int i = 0; i < 1; ++i) {
    const pqxx::row a = attempts[i];
    SCOPED_TRACE("attempt " + std::to_string(i + 1));
    EXPECT_EQ(a[0].as<int>(), i + 1);
    EXPECT_EQ(a[1].as<std::string>(), "failed");
    EXPECT_FALSE(a[2].is_null());
    EXPECT_EQ(a[2].as<int>(0), 550);
    EXPECT_NE(a[3].as<std::string>("").find("no such user"), std::string::npos)
        << a[3].as<std::string>("");
    EXPECT_EQ(a[4].as<std::string>(""), "550 no such user");
  }

  const pqxx::result e =
      sql("SELECT outcome, attempts, error FROM nudge.executions WHERE reminder_id = $1", id);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0][0].as<std::string>(), "failed");
  EXPECT_EQ(e[0][1].as<int>(), 1);
  EXPECT_EQ(e[0][2].as<std::string>(""), last_error);
  EXPECT_EQ(executions(), 1);
  EXPECT_TRUE(server_->messages().empty());
}

// A relay away is the worker's problem, not the message's: its emails wait, using no attempt,
// however long it lasts, and go once a relay takes them (explore30a F7: a relay away for 15 s
// failed every email due then, each loop probing with a real email's attempts).
TEST_F(EmailDelivery, AnEmailWaitsForARelayThatCannotBeReachedWithoutUsingAnAttempt) {
  const std::string url = "smtp://127.0.0.1:" + std::to_string(free_tcp_port());
  const std::int64_t id = create_one_time("INT_300", "ann@example.com", 1);
  ChildProcess& away = start_worker(email_env(url));
  // The first attempt, then the probes after rests of 2 and 4 s: none of them an attempt.
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return all_logs().find("the email relay cannot be reached or refuses this worker") !=
           std::string::npos;
  })) << all_logs();
  std::this_thread::sleep_for(std::chrono::seconds(7));
  EXPECT_EQ(status_of(id), "ACTIVE");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.delivery_attempts"), 0);
  EXPECT_EQ(executions(), 0);
  ASSERT_TRUE(wait_until(
      kSlow,
      [&] { return value<int>("SELECT attempt FROM nudge.reminders WHERE id = $1", id) == 0; }))
      << "its lease was not given back\n"
      << all_logs();
  EXPECT_EQ(all_logs().find("delivery failed"), std::string::npos) << all_logs();
  away.signal(SIGTERM);
  ASSERT_EQ(away.wait(kSlow), std::optional<int>(0)) << all_logs();

  start_server();
  start_worker(email_env(server_->url()));
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  EXPECT_EQ(status_of(id), "COMPLETED");
  const pqxx::row e =
      sql("SELECT outcome, attempts FROM nudge.executions WHERE reminder_id = $1", id).at(0);
  EXPECT_EQ(e[0].as<std::string>(), "delivered");
  EXPECT_EQ(e[1].as<int>(), 1);
  EXPECT_EQ(server_->messages().size(), 1u);
}

// A worker whose relay cannot be reached claims no emails for a while, so a worker whose relay
// answers sends them: one with a wrong port failed a third of all emails within seconds, every
// retry landing on it as the first free loop (explore18a #1). Its /readyz says why, and the
// last attempt of an occurrence is a warning.
TEST_F(EmailDelivery, AWorkerWhoseRelayCannotBeReachedLeavesItsEmailsToTheOthers) {
  start_server();
  const int port = free_tcp_port();
  const std::string nowhere = "smtp://127.0.0.1:" + std::to_string(free_tcp_port());
  const std::int64_t first = create_one_time("INT_500", "ann@example.com", 10);
  start_worker(email_env(nowhere, {{"NUDGE_RETRY_BASE_DELAY_MS", "100"},
                                   {"NUDGE_WORKER_CONCURRENCY", "1"},
                                   {"NUDGE_WORKER_METRICS_PORT", std::to_string(port)}}));
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return all_logs().find("the email relay cannot be reached or refuses this worker") !=
           std::string::npos;
  })) << all_logs();
  const Scraped unready = scrape(port, "/readyz?verbose");
  EXPECT_EQ(unready.status, 503);
  EXPECT_NE(unready.body.find("[-]email-relay failed: cannot be reached or refuses this worker"),
            std::string::npos)
      << unready.body;
  EXPECT_NE(unready.body.find("[+]claims ok"), std::string::npos) << unready.body;

  for (int i = 0; i < 20; ++i)
    create_one_time("INT_5" + std::to_string(10 + i), "bo@example.com", 2);
  start_worker(email_env(server_->url(), {{"NUDGE_RETRY_BASE_DELAY_MS", "100"}}));
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'COMPLETED'") == 21;
  })) << all_logs();
  EXPECT_EQ(status_of(first), "COMPLETED");
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders WHERE status = 'FAILED'"), 0);
  // The first email and the probes after each rest (2 s, 4 s, ...) were given back: no attempt.
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.delivery_attempts WHERE outcome = 'failed'"), 0)
      << all_logs();
  EXPECT_EQ(server_->messages().size(), 21u);
}

// The last attempt of an occurrence that fails is a warning, naming the reminder.
TEST_F(EmailDelivery, TheLastFailedAttemptOfAnOccurrenceIsAWarning) {
  ASSERT_NO_FATAL_FAILURE(start_server("greylist"));
  const std::int64_t id = create_one_time("INT_600", "ann@example.com", 1);
  start_worker(email_env(server_->url()));
  ASSERT_TRUE(wait_for_executions(1)) << all_logs();
  EXPECT_EQ(status_of(id), "FAILED");
  std::string line;
  ASSERT_TRUE(wait_until(kSlow, [&] {
    const std::string logs = all_logs();
    const auto at = logs.find(R"("msg":"delivery failed: the occurrence's last attempt")");
    if (at == std::string::npos) return false;
    const auto begin = logs.rfind('\n', at);
    line = logs.substr(begin == std::string::npos ? 0 : begin + 1,
                       logs.find('\n', at) - (begin == std::string::npos ? 0 : begin + 1));
    return true;
  })) << all_logs();
  EXPECT_NE(line.find(R"("level":"warn")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("reminder_id":)" + std::to_string(id)), std::string::npos) << line;
}

// The worker's log says which relay fails, and why, without its password; the stored errors
// are masked as the channel's tests show.
TEST_F(EmailDelivery, ThePasswordInTheSmtpUrlNeverShows) {
  const int port = free_tcp_port();
  const std::string url = "smtp://user:hunter2@127.0.0.1:" + std::to_string(port);
  create_one_time("INT_400", "ann@example.com", 2);
  auto& w = start_worker(
      email_env(url, {{"NUDGE_RETRY_BASE_DELAY_MS", "100"}, {"NUDGE_LOG_LEVEL", "debug"}}));
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return all_logs().find("the email relay cannot be reached or refuses this worker") !=
           std::string::npos;
  })) << all_logs();

  // Stopped, so the log holds everything the worker will ever say about this run.
  w.signal(SIGTERM);
  ASSERT_TRUE(w.wait(kSlow).has_value()) << all_logs();
  const std::string log = w.log();
  EXPECT_NE(log.find("smtp://user:***@127.0.0.1:" + std::to_string(port)), std::string::npos)
      << log;
  EXPECT_EQ(log.find("hunter2"), std::string::npos) << log;
}

}  // namespace
}  // namespace nudge::test
