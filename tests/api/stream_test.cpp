// GET /v1/stream: each change arrives as a Server-Sent Event shaped as the REST answers, with
// increasing ids, filtered as asked; a reconnect with Last-Event-ID misses nothing and repeats
// nothing; a slow reader is told it lagged; past max_streams a 503; a heartbeat; and a change
// committed late by a transaction that began earlier is not skipped.

#include <atomic>
#include <set>
#include <thread>

#include "api/api_fixture.hpp"
#include "support/sse_client.hpp"

namespace nudge::test {
namespace {

// Generous: any transaction on the same PostgreSQL server that has written and stays open (a
// test database being created by a parallel suite) holds every stream back until it ends.
constexpr auto kWait = 30s;

class StreamTest : public ApiTest {
 protected:
  StreamTest()
      : ApiTest({{"NUDGE_API_MAX_STREAMS", "3"},
                 {"NUDGE_API_STREAM_BUFFER_BYTES", "65536"},
                 {"NUDGE_API_STREAM_HEARTBEAT_SECONDS", "1"},
                 // The slow reader is left unread while the test makes its changes.
                 {"NUDGE_API_REQUEST_TIMEOUT_MS", "120000"}}) {}

  std::unique_ptr<SseClient> open(const std::string& query = "", const std::string& headers = "",
                                  int receive_buffer = 0) {
    auto s = std::make_unique<SseClient>(port_, "/v1/stream" + query, headers, receive_buffer);
    EXPECT_EQ(s->answer().status, 200) << s->answer().body;
    EXPECT_EQ(s->answer().header("Content-Type"), "text/event-stream");
    return s;
  }

  // The next event, which must come and be `event` with data.change `change`.
  json expect_event(SseClient& s, const std::string& event, const std::string& change) {
    const auto m = s.next_event(kWait);
    if (!m) {
      ADD_FAILURE() << "no " << event << " " << change << " came";
      return json();
    }
    EXPECT_EQ(m->event, event) << m->data;
    const json data = m->json();
    EXPECT_EQ(data["change"], change) << m->data;
    EXPECT_GT(m->id, last_id_) << "ids increase";
    last_id_ = m->id;
    return data;
  }

  std::string last_id_;
};

TEST_F(StreamTest, EachChangeArrivesShapedAsTheRestAnswer) {
  auto s = open();
  const json created = post("/v1/reminders",
                            R"({"entity_type":"user","entity_id":"u1","event_type":"e",
                                "channel":"log","schedule_type":"recurring",
                                "interval_seconds":3600,"run_at":"2099-01-01T00:00:00Z"})")
                           .body;
  EXPECT_EQ(expect_event(*s, "reminder", "created")["reminder"], created);
  const std::string r = "/v1/reminders/" + std::to_string(created["id"].get<long>());
  EXPECT_EQ(expect_event(*s, "reminder", "paused")["reminder"], post(r + "/pause").body);
  EXPECT_EQ(expect_event(*s, "reminder", "resumed")["reminder"], post(r + "/resume").body);
  EXPECT_EQ(expect_event(*s, "reminder", "rescheduled")["reminder"],
            patch(r, R"({"interval_seconds": 60})").body);
  EXPECT_EQ(expect_event(*s, "reminder", "cancelled")["reminder"], post(r + "/cancel").body);
  // Its end is an event of Nudge's own, with the reminder's entity.
  EXPECT_EQ(expect_event(*s, "event", "received")["event"]["entity_id"], "u1");

  EXPECT_EQ(expect_event(*s, "flag", "set")["flag"],
            put("/v1/flags/paid", R"({"value": true})").body);

  const json rule = post("/v1/rules", R"({"name": "stop", "event_type": "signed",
      "action": {"type": "set_flag", "flag": {"key": "signed_{{entity_id}}", "value": true}}})")
                        .body;
  EXPECT_EQ(expect_event(*s, "rule", "created")["rule"], rule);
  const std::string u = "/v1/rules/" + std::to_string(rule["id"].get<long>());
  EXPECT_EQ(expect_event(*s, "rule", "updated")["rule"], patch(u, R"({"name": "stop it"})").body);

  const json event = post("/v1/events", R"({"event_type": "signed", "entity_type": "contract",
      "entity_id": "c1"})")
                         .body;
  expect_event(*s, "flag", "set");  // the rule's effect, in the same transaction
  const json received = expect_event(*s, "event", "received");
  EXPECT_EQ(received["event"], event["event"]);
  EXPECT_EQ(received["effects"], event["effects"]);
  ASSERT_EQ(received["effects"].size(), 1u);

  const json last = get(u).body;
  ASSERT_EQ(send("DELETE", u).status, 204);
  EXPECT_EQ(expect_event(*s, "rule", "deleted")["rule"], last);
}

TEST_F(StreamTest, AFireArrivesWithItsExecutionAfterARealWorkerFiresIt) {
  auto s = open("?types=reminder");
  ChildProcess worker({program("nudge-worker")}, {{"NUDGE_DATABASE_URL", db_.url()}},
                      log_.string() + ".worker");
  const json created = post("/v1/reminders",
                            R"({"entity_type":"user","entity_id":"u1","event_type":"e",
                                "channel":"log","schedule_type":"one_time",
                                "run_at":"2020-01-01T00:00:00Z"})")
                           .body;
  expect_event(*s, "reminder", "created");
  const json fired = expect_event(*s, "reminder", "fired");
  EXPECT_EQ(fired["reminder"]["id"], created["id"]);
  EXPECT_EQ(fired["reminder"]["status"], "COMPLETED");
  EXPECT_EQ(fired["execution"]["outcome"], "delivered");
  EXPECT_EQ(fired["execution"]["reminder_id"], created["id"]);
  worker.remove_logs();
}

TEST_F(StreamTest, FiltersPassOnlyWhatWasAskedFor) {
  const long mine = create_one("u1");
  auto by_id = open("?reminder_id=" + std::to_string(mine));
  auto by_entity = open("?entity_type=user&entity_id=u2");
  auto flags = open("?types=flag,rule");
  const long other = create_one("u2");
  post("/v1/reminders/" + std::to_string(other) + "/pause");
  post("/v1/reminders/" + std::to_string(mine) + "/pause");
  put("/v1/flags/f", R"({"value": true})");

  // Its creation committed before the stream opened, but may still come: a transaction
  // elsewhere on the server (a parallel test creating its database) can hold the log back.
  auto first = by_id->next_event(kWait);
  ASSERT_TRUE(first.has_value());
  if (first->json()["change"] == "created") first = by_id->next_event(kWait);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->json()["change"], "paused");
  EXPECT_EQ(first->json()["reminder"]["id"], mine);
  last_id_.clear();
  EXPECT_EQ(expect_event(*by_entity, "reminder", "created")["reminder"]["id"], other);
  EXPECT_EQ(expect_event(*by_entity, "reminder", "paused")["reminder"]["id"], other);
  last_id_.clear();
  EXPECT_EQ(expect_event(*flags, "flag", "set")["flag"]["key"], "f");

  // Then nothing more for any of them: the heartbeat comes, no other event.
  for (auto* s : {by_id.get(), by_entity.get(), flags.get()}) {
    const auto m = s->next(3s);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->comment, "ping") << m->event << " " << m->data;
  }
}

TEST_F(StreamTest, ABadFilterIs400NamingTheParameter) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"?reminder_id=abc", "reminder_id"},
      {"?types=reminder,nope", "types"},
      {"?types=", "types"},
      {"?entity_type=", "entity_type"},
      {"?last_event_id=42", "last_event_id"},
      {"?colour=red", "colour"},
  };
  for (const auto& [query, field] : cases) {
    SseClient s(port_, "/v1/stream" + query);
    EXPECT_EQ(s.answer().status, 400) << query;
    EXPECT_EQ(json::parse(s.answer().body, nullptr, false)["error"]["field"], field) << query;
  }
  SseClient header(port_, "/v1/stream", "Last-Event-ID: yesterday\r\n");
  EXPECT_EQ(header.answer().status, 400);
  EXPECT_EQ(json::parse(header.answer().body, nullptr, false)["error"]["field"], "Last-Event-ID");
}

TEST_F(StreamTest, ClientsPastMaxStreamsGet503UntilOneLeaves) {
  std::vector<std::unique_ptr<SseClient>> open_streams;
  for (int i = 0; i < 3; ++i) open_streams.push_back(open());
  SseClient refused(port_, "/v1/stream");
  EXPECT_EQ(refused.answer().status, 503);
  EXPECT_EQ(json::parse(refused.answer().body, nullptr, false)["error"]["code"], "unavailable");
  EXPECT_EQ(get("/health").status, 200) << "other requests are still served";

  open_streams.pop_back();
  EXPECT_TRUE(wait_until(kWait, [&] {
    SseClient again(port_, "/v1/stream");
    return again.answer().status == 200;
  }));
}

TEST_F(StreamTest, AHeartbeatCommentComesWhenNothingHappens) {
  auto s = open();
  const auto m = s->next(3s);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->comment, "ping");
  EXPECT_TRUE(m->event.empty());
}

// Changes keep coming while the client is away: on its return it gets each one it missed,
// then the live ones, each exactly once.
TEST_F(StreamTest, AReconnectWithLastEventIdMissesNothingAndRepeatsNothing) {
  constexpr int kChanges = 300;
  auto first = open("?types=flag");
  std::atomic<bool> failed{false};
  std::thread writer([&] {
    try {
      pqxx::connection conn(db_.url());
      for (int i = 0; i < kChanges; ++i) {
        pqxx::nontransaction(conn).exec("SELECT nudge.set_flag('f" + std::to_string(i) +
                                        "', true)");
        if (i % 20 == 0) std::this_thread::sleep_for(10ms);
      }
    } catch (const std::exception&) {
      failed = true;
    }
  });
  std::map<std::string, int> seen;
  std::string last_id;
  auto take = [&](SseClient& s, int count) {
    for (int i = 0; i < count; ++i) {
      const auto m = s.next_event(kWait);
      if (!m) return;
      EXPECT_GT(m->id, last_id);
      last_id = m->id;
      ++seen[m->json()["flag"]["key"].get<std::string>()];
    }
  };
  take(*first, 50);
  first.reset();
  std::this_thread::sleep_for(200ms);  // away while changes keep coming
  auto second = open("?types=flag", "Last-Event-ID: " + last_id + "\r\n");
  take(*second, kChanges - static_cast<int>(seen.size()));
  writer.join();
  ASSERT_FALSE(failed.load());
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kChanges));
  for (const auto& [key, times] : seen) EXPECT_EQ(times, 1) << key;
  // The parameter the dashboard may use resumes the same way.
  auto third = open("?types=flag&last_event_id=" + last_id);
  EXPECT_FALSE(third->next_event(1500ms).has_value()) << "nothing after the last id";
}

TEST_F(StreamTest, ASlowReaderIsToldItLaggedAndCatchesUpFromHistory) {
  const long id = create_one("slow");
  auto slow = open("", "", 4096);
  const std::string payload(30000, 'x');
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(
        patch("/v1/reminders/" + std::to_string(id),
              R"({"payload": {"n": )" + std::to_string(i) + R"(, "pad": ")" + payload + "\"}}")
            .status,
        200);
  }
  std::string last_id;
  int got = 0;
  std::optional<SseMessage> lagged;
  while (auto m = slow->next_event(kWait)) {
    if (m->event == "lagged") {
      lagged = m;
      break;
    }
    last_id = m->id;
    ++got;
  }
  ASSERT_TRUE(lagged.has_value()) << "got " << got << " of 300 and no lagged event";
  EXPECT_EQ(lagged->json()["error"]["code"], "lagged");
  // Its id is that of the last change received (or where the stream began, if none was), so
  // EventSource resumes from there.
  EXPECT_FALSE(lagged->id.empty());
  if (!last_id.empty()) {
    EXPECT_EQ(lagged->id, last_id);
  }
  EXPECT_FALSE(slow->next(5s).has_value());
  EXPECT_TRUE(slow->ended());
  EXPECT_LT(got, 300);

  auto again = open("", "Last-Event-ID: " + lagged->id + "\r\n");
  int caught_up = 0;
  while (got + caught_up < 300) {
    const auto m = again->next_event(kWait);
    ASSERT_TRUE(m.has_value()) << "caught up " << caught_up;
    if (m->json()["change"] == "rescheduled") ++caught_up;
  }
  EXPECT_EQ(got + caught_up, 300);
}

// A transaction that began first but commits last: a reader that took its later neighbour and
// moved on would never send it. Its change waits, and the later one behind it.
TEST_F(StreamTest, AChangeCommittedLateByAnEarlierTransactionIsNotSkipped) {
  auto s = open("?types=flag");
  pqxx::connection other(db_.url());
  pqxx::work early(other);
  early.exec("SELECT nudge.set_flag('early', true)");
  ASSERT_EQ(put("/v1/flags/late", R"({"value": true})").status, 200);
  EXPECT_FALSE(s->next_event(1s).has_value()) << "held back behind the open transaction";
  early.commit();
  EXPECT_EQ(expect_event(*s, "flag", "set")["flag"]["key"], "early");
  EXPECT_EQ(expect_event(*s, "flag", "set")["flag"]["key"], "late");
}

TEST_F(StreamTest, AResumeFromPrunedHistorySaysWhatIsGone) {
  put("/v1/flags/a", R"({"value": true})");
  put("/v1/flags/b", R"({"value": true})");
  const auto a = sql("SELECT xid::text, id FROM nudge.changes WHERE flag_keys = '{a}'");
  sql("DELETE FROM nudge.changes WHERE flag_keys = '{a}'");
  sql("UPDATE nudge.changes_pruned SET xid = $1::xid8, id = $2", a[0][0].c_str(),
      a[0][1].as<long>());
  auto s = open("", "Last-Event-ID: 0000000000000001-0000000000000001-00000001\r\n");
  const auto gone = s->next_event(kWait);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->event, "gone");
  EXPECT_EQ(gone->json()["error"]["code"], "history_pruned");
  EXPECT_EQ(expect_event(*s, "flag", "set")["flag"]["key"], "b");
}

}  // namespace
}  // namespace nudge::test
