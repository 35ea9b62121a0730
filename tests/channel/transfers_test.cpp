// Transfers against SMTP relays that will not cooperate (tests/support/misbehaving_relay.hpp),
// with plain libcurl uploads as patient as libcurl gets: whatever the relay does, ending
// transfers and connections takes no time.

#include "transfers.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "support/misbehaving_relay.hpp"
#include "support/test_database.hpp"

namespace nudge {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::MisbehavingRelay;

// An SMTP message and how much of it libcurl has read.
struct Upload {
  explicit Upload(std::string text) : message(std::move(text)) {}
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;
  ~Upload() { curl_slist_free_all(recipients); }

  std::string message;
  std::size_t sent = 0;
  curl_slist* recipients = nullptr;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto& upload = *static_cast<Upload*>(user);
  const std::size_t n = std::min(size * count, upload.message.size() - upload.sent);
  std::memcpy(buffer, upload.message.data() + upload.sent, n);
  upload.sent += n;
  return n;
}

// A handle sending `upload` through the relay at `url`, with no timeout of its own (libcurl
// still gives up on a silent peer after 120 s).
CURL* smtp_upload(const std::string& url, Upload& upload) {
  CURL* easy = curl_easy_init();
  upload.recipients = curl_slist_append(nullptr, "<ann@example.com>");
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_MAIL_FROM, "<nudge@example.com>");
  curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, upload.recipients);
  curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload.message.size()));
  curl_easy_setopt(easy, CURLOPT_READFUNCTION, &read_upload);
  curl_easy_setopt(easy, CURLOPT_READDATA, &upload);
  return easy;
}

// Runs `transfers` until `result` is in or `limit` passes.
void run_until(Transfers& transfers, const std::optional<CURLcode>& result,
               std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!result && Clock::now() < deadline) transfers.run(100, {});
}

// libcurl keeps the connection for reuse and, when the multi handle goes, says QUIT and waits
// for the reply; the relay never sends it.
TEST(Transfers, DestroyedTheyDropAConnectionKeptForReuseWithoutWaitingOnThePeer) {
  MisbehavingRelay relay(MisbehavingRelay::Behaviour::silent_after_one_message);
  Upload upload("Subject: one\r\n\r\nThe only message this relay answers.\r\n");
  std::optional<CURLcode> result;
  auto transfers = std::make_unique<Transfers>();
  transfers->add(smtp_upload(relay.url(), upload), [&](CURLcode rc, CURL*) { result = rc; });
  run_until(*transfers, result, 20s);
  ASSERT_EQ(result, std::optional<CURLcode>(CURLE_OK));
  ASSERT_EQ(relay.messages(), 1);
  ASSERT_EQ(relay.open_connections(), 1) << "the connection kept for reuse";

  const auto begin = Clock::now();
  transfers.reset();
  EXPECT_LT(Clock::now() - begin, 1s);
  EXPECT_TRUE(test::wait_until(5s, [&] { return relay.open_connections() == 0; }));
}

// The kernel takes the last of a big message from libcurl, which then waits for the relay's
// "250" inside run(): only another thread can end that wait, and cutting the connections does.
TEST(Transfers, CutFromAnotherThreadTheirConnectionsEndAWaitInsideRun) {
  MisbehavingRelay relay(MisbehavingRelay::Behaviour::slow_reader);
  std::string text = "Subject: long\r\n\r\n";
  while (text.size() < 100 * 1024) text += "All work and no play makes Jack a dull boy.\r\n";
  Upload upload(text);
  std::optional<CURLcode> result;
  Transfers transfers;
  transfers.add(smtp_upload(relay.url(), upload), [&](CURLcode rc, CURL*) { result = rc; });

  Clock::time_point cut_at;
  std::thread cutter([&] {
    test::wait_until(20s,
                     [&] { return relay.received().find("Subject: long") != std::string::npos; });
    std::this_thread::sleep_for(1s);  // the rest goes to the kernel; libcurl waits for "250"
    cut_at = Clock::now();
    transfers.cut_connections();
  });
  run_until(transfers, result, 30s);
  const auto ended_at = Clock::now();
  cutter.join();

  ASSERT_TRUE(result.has_value()) << "still running";
  EXPECT_NE(*result, CURLE_OK);
  EXPECT_LT(ended_at - cut_at, 1s);
}

}  // namespace
}  // namespace nudge
