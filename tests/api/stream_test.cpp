// GET /v1/stream: each change arrives as a Server-Sent Event shaped as the REST answers, with
// increasing ids, filtered as asked; a reconnect with Last-Event-ID misses nothing and repeats
// nothing; a slow reader is told it lagged; past max_streams a 503; a heartbeat; and a change
// committed late by a transaction that began earlier is not skipped.

#include <atomic>
#include <cstdio>
#include <set>
#include <thread>

#include "api/api_fixture.hpp"
#include "support/sse_client.hpp"

namespace nudge::test {
namespace {

// Only the transactions that wrote the log hold a stream back (not those of parallel suites on
// the same server): a change comes within a poll or two, this is for a loaded machine.
constexpr auto kWait = 10s;

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

// Fires are rendered by the API from the rows (api/stream_render.cpp), not by nudge.reminder_json
// and nudge.execution_json as the REST answers are: the objects must be the same, field for
// field, for a delivery and for a failure with its delivery attempts.
TEST_F(StreamTest, AFireArrivesWithItsExecutionShapedAsTheRestAnswersAfterARealWorkerFiresIt) {
  auto s = open("?types=reminder");
  ChildProcess worker({program("nudge-worker")}, {{"NUDGE_DATABASE_URL", db_.url()}},
                      log_.string() + ".worker");
  const json delivered = post("/v1/reminders",
                              R"({"entity_type":"user","entity_id":"u1","event_type":"e",
                                  "channel":"log","schedule_type":"one_time",
                                  "payload":{"text":"caf\u00e9 \"quoted\"\n","n":[1,null,2.5]},
                                  "run_at":"2020-01-01T00:00:00Z"})")
                             .body;
  expect_event(*s, "reminder", "created");
  const json fired = expect_event(*s, "reminder", "fired");
  const std::string r = "/v1/reminders/" + std::to_string(delivered["id"].get<long>());
  EXPECT_EQ(fired["reminder"], get(r).body);
  EXPECT_EQ(fired["reminder"]["status"], "COMPLETED");
  EXPECT_EQ(fired["execution"]["outcome"], "delivered");
  EXPECT_EQ(fired["execution"], get(r + "/executions").body["items"][0]);

  // The worker refuses localhost at connect time: one failed attempt ends it.
  const json failing = post("/v1/reminders",
                            R"({"entity_type":"user","entity_id":"u2","event_type":"e",
                                "channel":"webhook","target":"http://localhost:9/hook",
                                "request":{"headers":{"X-Kind":"test"}},
                                "schedule_type":"one_time","max_attempts":1,
                                "run_at":"2020-01-01T00:00:00Z"})")
                           .body;
  ASSERT_TRUE(failing.contains("id")) << failing;
  expect_event(*s, "reminder", "created");
  const json failed = expect_event(*s, "reminder", "failed");
  const std::string f = "/v1/reminders/" + std::to_string(failing["id"].get<long>());
  EXPECT_EQ(failed["reminder"], get(f).body);
  EXPECT_EQ(failed["execution"], get(f + "/executions").body["items"][0]);
  EXPECT_EQ(failed["execution"]["delivery_attempts"].size(), 1u) << failed;
  worker.remove_logs();
}

// Every field a reminder can have, as the REST answer shows it.
TEST_F(StreamTest, AReminderWithEveryFieldSetArrivesAsTheRestAnswerShowsIt) {
  auto s = open("?types=reminder");
  const json rule = post("/v1/rules", R"({"name": "make", "event_type": "hired",
      "action": {"type": "remind", "reminder": {"event_type": "checkin", "channel": "webhook",
      "target": "https://hooks.example.com/x", "schedule_type": "cron", "cron": "0 9 * * 1-5",
      "timezone": "Europe/Berlin", "max_fires": 5, "ends_at": "2099-06-30T12:00:00+02:00",
      "stop_condition_type": "db_check", "stop_condition_value": "done_{{entity_id}}",
      "payload": {"note": "tab\there", "deep": {"x": null}}}}})")
                        .body;
  ASSERT_TRUE(rule.contains("id")) << rule;
  const json event =
      post("/v1/events", R"({"event_type":"hired","entity_type":"user","entity_id":"u9"})").body;
  ASSERT_EQ(event["effects"].size(), 1u) << event;
  const json created = expect_event(*s, "reminder", "created");
  const long id = created["reminder"]["id"].get<long>();
  EXPECT_EQ(created["reminder"], get("/v1/reminders/" + std::to_string(id)).body);
  EXPECT_EQ(created["reminder"]["rule_id"], rule["id"]);
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

  // Its creation committed before the stream opened: the stream starts after it.
  EXPECT_EQ(expect_event(*by_id, "reminder", "paused")["reminder"]["id"], mine);
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
  EXPECT_EQ(refused.answer().header("Retry-After"), "5");
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

// A resume reads the log in pages; a page that began at a change of one object once came back
// one short, which the API took for the end of the log: of a transaction of 2,500 changes a
// resume got 1,999 and went on from the newest batch.
TEST_F(StreamTest, AResumeGetsEveryChangeOfALongTransaction) {
  constexpr int kChanges = 2500;
  auto first = open("?types=flag");
  sql("SELECT nudge.set_flag('start', true)");
  expect_event(*first, "flag", "set");
  first.reset();
  {
    pqxx::work tx(conn_);
    for (int i = 0; i < kChanges; ++i)
      tx.exec("SELECT nudge.set_flag('f" + std::to_string(i) + "', true)");
    tx.commit();
  }
  auto resumed = open("?types=flag", "Last-Event-ID: " + last_id_ + "\r\n");
  int got = 0;
  int lagged = 0;
  while (got < kChanges) {
    const auto m = resumed->next_event(kWait);
    if (!m) break;
    if (m->event == "lagged") {
      // This reader is slower than the server (a sanitizer build): it resumes from the lagged
      // event's id, as EventSource does, and must still get every change once.
      ASSERT_LT(++lagged, 100);
      resumed = open("?types=flag", "Last-Event-ID: " + m->id + "\r\n");
      continue;
    }
    ASSERT_EQ(m->event, "flag") << m->data;
    ASSERT_EQ(m->json()["flag"]["key"], "f" + std::to_string(got)) << m->data;
    ++got;
  }
  EXPECT_EQ(got, kChanges);
  EXPECT_FALSE(resumed->next_event(1500ms).has_value()) << "nothing more";
}

// Streams resuming over a long history catch up on request threads, a page at a time with a
// pooled connection: at most half the threads do at once (here 2 of 4), so the others keep
// serving. 16 such clients once held every thread and connection of nudge-api for minutes,
// /livez included.
class StreamCatchUp : public ApiTest {
 protected:
  StreamCatchUp()
      : ApiTest({{"NUDGE_API_THREADS", "4"}, {"NUDGE_API_REQUEST_TIMEOUT_MS", "120000"}}) {}
  // A resume from `id` that reads nothing: its catch-up blocks on the full socket.
  std::unique_ptr<SseClient> stalled_resume(const std::string& id) {
    return std::make_unique<SseClient>(port_, "/v1/stream?types=flag",
                                       "Last-Event-ID: " + id + "\r\n", 4096);
  }
};

TEST_F(StreamCatchUp, AtMostHalfTheThreadsCatchUpFromHistoryAndTheOthersKeepServing) {
  std::string start;
  {
    SseClient live(port_, "/v1/stream?types=flag");
    ASSERT_EQ(live.answer().status, 200);
    sql("SELECT nudge.set_flag('start', true)");
    const auto m = live.next_event(10s);
    ASSERT_TRUE(m.has_value());
    start = m->id;
  }
  // Some 7 MB of history after it, more than the sockets hold; once an event made after it is
  // live, the live position is past it all.
  SseClient marker(port_, "/v1/stream?types=event");
  ASSERT_EQ(marker.answer().status, 200);
  sql("INSERT INTO nudge.status_flags (key, value) SELECT 'a-long-history-flag-' || g, true "
      "FROM generate_series(1, 40000) g");
  sql("SELECT nudge.emit_event('marker', 'test', 'm')");
  ASSERT_TRUE(marker.next_event(20s).has_value());
  auto first = stalled_resume(start);
  auto second = stalled_resume(start);
  ASSERT_EQ(first->answer().status, 200);
  ASSERT_EQ(second->answer().status, 200);
  // A third waits its turn: 503 with Retry-After, saying why.
  const auto third = stalled_resume(start);
  EXPECT_EQ(third->answer().status, 503) << third->answer().body;
  EXPECT_NE(third->answer().body.find("streams are catching up from history"), std::string::npos)
      << third->answer().body;
  // Meanwhile the other threads serve.
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(get("/livez").status, 200);
  EXPECT_EQ(get("/v1/flags?limit=1").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 2s);
  // A client that leaves gives its place back.
  first.reset();
  EXPECT_TRUE(wait_until(10s, [&] { return stalled_resume(start)->answer().status == 200; }));
}

TEST_F(StreamTest, ASlowReaderIsToldItLaggedAndCatchesUpFromHistory) {
  const long id = create_one("slow");
  auto slow = open("", "", 4096);
  // The changes go in rounds of 10, each published before the next is made (a flag set after
  // it, seen by a second stream that gets only flags): a batch larger than the limit still goes
  // to a client that keeps up, and a fast server would otherwise send the whole run as one.
  auto rounds = open("?types=flag");
  // 300 changes of 30 kB, each its own transaction, made in SQL: the stream's work is under test
  // here, not 9 MB of PATCH bodies (which took most of this test's CPU in the sanitizer build).
  pqxx::connection conn(db_.url());
  for (int i = 0; i < 300; ++i) {
    pqxx::nontransaction(conn).exec_params(
        "SELECT nudge.reschedule_reminder($1, p_payload => jsonb_build_object('n', $2::integer, "
        "'pad', repeat('x', 30000)))",
        id, i);
    if (i % 10 != 9) continue;
    const std::string key = "round-" + std::to_string(i / 10);
    pqxx::nontransaction(conn).exec_params("SELECT nudge.set_flag($1, true)", key);
    ASSERT_EQ(expect_event(*rounds, "flag", "set")["flag"]["key"], key);
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
    if (m->json()["change"] == "rescheduled") ++got;
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
// moved on by id would never send it. Each comes when it commits, the early one last.
TEST_F(StreamTest, AChangeCommittedLateByAnEarlierTransactionIsNotSkipped) {
  auto s = open("?types=flag");
  pqxx::connection other(db_.url());
  pqxx::work early(other);
  early.exec("SELECT nudge.set_flag('early', true)");
  ASSERT_EQ(put("/v1/flags/late", R"({"value": true})").status, 200);
  EXPECT_EQ(expect_event(*s, "flag", "set")["flag"]["key"], "late");
  early.commit();
  EXPECT_EQ(expect_event(*s, "flag", "set")["flag"]["key"], "early");
}

// Only what wrote the log can hold the stream back: an open transaction elsewhere on the server
// (here in this database, which is the harder case) delays nothing.
TEST_F(StreamTest, AnOpenTransactionThatChangedNothingShownDelaysNothing) {
  auto s = open("?types=flag");
  pqxx::connection other(db_.url());
  pqxx::work open_tx(other);
  open_tx.exec("SELECT pg_current_xact_id()");
  ASSERT_EQ(put("/v1/flags/now", R"({"value": true})").status, 200);
  EXPECT_EQ(expect_event(*s, "flag", "set")["flag"]["key"], "now");
}

TEST_F(StreamTest, AResumeFromPrunedHistorySaysWhatIsGone) {
  put("/v1/flags/a", R"({"value": true})");
  // a's batch is made before b commits, so b is in a later one.
  const auto a = value<long>("SELECT nudge.stream_advance()");
  put("/v1/flags/b", R"({"value": true})");
  // Pruned as nudge.prune_history prunes: a's batch with its rows.
  sql("DELETE FROM nudge.changes WHERE flag_keys = '{a}'");
  sql("UPDATE nudge.changes_pruned SET pos = $1", a);
  auto s = open("", "Last-Event-ID: 0000000000000000-0000000000000001-00000001\r\n");
  const auto gone = s->next_event(kWait);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->event, "gone");
  EXPECT_EQ(gone->json()["error"]["code"], "history_pruned");
  EXPECT_EQ(expect_event(*s, "flag", "set")["flag"]["key"], "b");
}

// Nothing was pruned: a client starting from the log's beginning gets every change, and no
// `gone` telling it that it lost some.
TEST_F(StreamTest, AResumeFromTheStartOfAnUnprunedLogGetsEverythingAndNoGone) {
  put("/v1/flags/a", R"({"value": true})");
  put("/v1/flags/b", R"({"value": true})");
  const std::string zero = "0000000000000000-0000000000000000-00000000";
  for (const auto& s : {open("?types=flag&last_event_id=" + zero),
                        open("?types=flag", "Last-Event-ID: " + zero + "\r\n")}) {
    const auto first = s->next_event(kWait);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->event, "flag") << first->data;
    EXPECT_EQ(first->json()["flag"]["key"], "a");
    last_id_ = first->id;  // each stream's ids increase from its own first
    EXPECT_EQ(expect_event(*s, "flag", "set")["flag"]["key"], "b");
  }
}

// The id of a position (batch, id, n) as the server writes it.
std::string event_id(long batch, long id, int n) {
  char text[48];
  std::snprintf(text, sizeof text, "%016lx-%016lx-%08x", batch, id, static_cast<unsigned>(n));
  return text;
}

// A database rebuilt or restored behind an open dashboard leaves it an id past the log's end:
// refused as a bad id (the EventSource then reconnects without it), never answered with a stream
// that stays silent until the log passes it. Ids the server did send still resume, however new:
// those of a catch-up read from the log ahead of the live stream, and the start of the batch
// after the last.
TEST_F(StreamTest, AResumeFromPastTheLogsEndIs400AndEveryIdSentStillResumes) {
  put("/v1/flags/a", R"({"value": true})");
  const std::string future = "0000000000ffffff-0000000000ffffff-00000001";
  for (const auto& [query, header, field] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"", "Last-Event-ID: " + future + "\r\n", "Last-Event-ID"},
           {"?last_event_id=" + future, "", "last_event_id"}}) {
    SseClient s(port_, "/v1/stream" + query, header);
    EXPECT_EQ(s.answer().status, 400) << s.answer().body;
    const json body = json::parse(s.answer().body, nullptr, false);
    EXPECT_EQ(body["error"]["code"], "invalid_value");
    EXPECT_EQ(body["error"]["field"], field);
    EXPECT_NE(body["error"]["message"].get<std::string>().find("past the end"), std::string::npos);
  }
  // Nothing is changing: the log ends with batch `last`.
  const long last = value<long>("SELECT nudge.stream_advance()");
  EXPECT_EQ(SseClient(port_, "/v1/stream", "Last-Event-ID: " + event_id(last + 1, 0, 0) + "\r\n")
                .answer()
                .status,
            200);
  EXPECT_EQ(SseClient(port_, "/v1/stream", "Last-Event-ID: " + event_id(last + 1, 0, 1) + "\r\n")
                .answer()
                .status,
            400);
  // Each id as soon as it came, from a catch-up racing fresh changes and from the live stream.
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    pqxx::connection conn(db_.url());
    for (int i = 0; writing; ++i)
      pqxx::nontransaction(conn).exec("SELECT nudge.set_flag('w" + std::to_string(i % 50) + "', " +
                                      (i % 2 ? "true" : "false") + ")");
  });
  const std::string zero = "0000000000000000-0000000000000000-00000000";
  auto from_start = open("?types=flag&last_event_id=" + zero);
  int resumed = 0;
  for (int i = 0; i < 30; ++i) {
    const auto m = from_start->next_event(kWait);
    if (!m) break;
    // Checked before a place is taken: past max_streams, a 503 is not a refusal of the id.
    SseClient again(port_, "/v1/stream?types=flag", "Last-Event-ID: " + m->id + "\r\n");
    EXPECT_NE(again.answer().status, 400) << m->id << " " << again.answer().body;
    ++resumed;
  }
  writing = false;
  writer.join();
  EXPECT_EQ(resumed, 30);
}

// A database restored or rebuilt behind a running nudge-api: the log's end is before what the
// streams were sent. They end with gone (log_reset), rather than hearing nothing until the log
// passes where it was, and a stream opened then hears the new changes.
TEST_F(StreamTest, AChangeLogThatGoesBackEndsTheStreamsAndNewOnesHearNewChanges) {
  auto s = open("?types=flag");
  for (int i = 0; i < 3; ++i) {
    put("/v1/flags/f" + std::to_string(i), R"({"value": true})");
    expect_event(*s, "flag", "set");  // one batch each
  }
  sql("DELETE FROM nudge.change_batches WHERE pos > (SELECT min(pos) FROM nudge.change_batches)");
  std::optional<SseMessage> gone;
  while (auto m = s->next_event(kWait)) {
    if (m->event == "gone") {
      gone = m;
      break;
    }
  }
  ASSERT_TRUE(gone.has_value()) << api_->log();
  EXPECT_EQ(gone->json()["error"]["code"], "log_reset") << gone->data;
  EXPECT_FALSE(s->next(5s).has_value());
  EXPECT_TRUE(s->ended());
  // Logged once the streams were ended: it may come just after their end.
  EXPECT_TRUE(wait_until(
      5s, [&] { return api_->log().find("the change log went back") != std::string::npos; }));

  auto fresh = open("?types=flag");
  put("/v1/flags/after", R"({"value": true})");
  const auto m = fresh->next_event(kWait);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->json()["flag"]["key"], "after");
}

}  // namespace
}  // namespace nudge::test
