// HTTPS: nudge-api with [api] tls_cert and tls_key, a self-signed certificate made here with the
// openssl command. Answers over TLS (httplib's SSLClient), plain HTTP gets nothing,
// keep-alive and many concurrent TLS clients work, and a bad certificate or key stops the start
// naming the setting without showing the key.

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

#include "support/processes.hpp"
#include "support/prometheus_text.hpp"
#include "support/raw_http.hpp"
#include "support/test_database.hpp"

namespace nudge::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A self-signed certificate for 127.0.0.1 and its key, in a directory of the test's own.
struct SelfSigned {
  fs::path dir, cert, key;
  explicit SelfSigned(const std::string& name) {
    dir = fs::temp_directory_path() / ("nudge-tls-" + std::to_string(::getpid()) + "-" + name);
    fs::create_directories(dir);
    cert = dir / "cert.pem";
    key = dir / "key.pem";
    const auto made =
        run_program({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                     "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                     key.string(), "-out", cert.string()},
                    {}, 60s);
    EXPECT_EQ(made.exit_code, 0) << made.err;
  }
  ~SelfSigned() { fs::remove_all(dir); }
};

class Https : public DatabaseTest {
 protected:
  Https() : tls_("https-" + db_.name()), port_(free_tcp_port()) {}

  // Starts nudge-api serving HTTPS with `cert` and `key`; waits until it answers.
  void start(const std::map<std::string, std::string>& more = {}) {
    std::map<std::string, std::string> env{{"NUDGE_DATABASE_URL", db_.url()},
                                           {"NUDGE_API_PORT", std::to_string(port_)},
                                           {"NUDGE_API_TLS_CERT", tls_.cert.string()},
                                           {"NUDGE_API_TLS_KEY", tls_.key.string()},
                                           {"NUDGE_API_AUTH", "off"}};
    for (const auto& [k, v] : more) env[k] = v;
    api_ = std::make_unique<ChildProcess>(std::vector<std::string>{program("nudge-api")}, env,
                                          (tls_.dir / "api.log").string());
    const bool up = wait_until(60s, [&] {
      auto c = client();
      auto r = c->Get("/health");
      return r && r->status == 200;
    });
    ASSERT_TRUE(up) << api_->log();
  }

  // A client that trusts only the test's certificate.
  std::unique_ptr<httplib::SSLClient> client() const {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port_);
    c->set_ca_cert_path(tls_.cert.c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(5);
    c->set_read_timeout(30);
    return c;
  }

  ~Https() override {
    if (api_ && !HasFailure()) api_->remove_logs();
  }

  SelfSigned tls_;
  int port_;
  std::unique_ptr<ChildProcess> api_;
};

TEST_F(Https, HealthIsAnsweredOverTlsWithTheConfiguredCertificate) {
  start();
  auto c = client();
  const auto r = c->Get("/health");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(nlohmann::json::parse(r->body)["status"], "ok");
  // Browsers keep to HTTPS; nothing is sniffed or cached on the way.
  EXPECT_EQ(r->get_header_value("Strict-Transport-Security"), "max-age=31536000");
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store");
  // Whoever does not trust it gets no answer.
  httplib::SSLClient stranger("127.0.0.1", port_);
  stranger.enable_server_certificate_verification(true);
  stranger.set_ca_cert_path("/nonexistent");
  EXPECT_FALSE(stranger.Get("/health"));
}

// TLS 1.2 only with forward secrecy and AEAD: RSA key exchange and CBC with SHA-1 are refused.
TEST_F(Https, OnlyForwardSecretAeadCiphersAreOffered) {
  start();
  const auto handshake = [&](const std::string& cipher) {
    return run_program({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_),
                        "-tls1_2", "-cipher", cipher, "-CAfile", tls_.cert.string()},
                       {}, 10s);
  };
  const auto strong = handshake("ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(strong.exit_code, 0) << strong.err;
  for (const std::string weak : {"AES128-SHA", "AES256-SHA", "ECDHE-RSA-AES128-SHA"}) {
    const auto refused = handshake(weak);
    EXPECT_NE(refused.exit_code, 0) << weak << "\n" << refused.out;
  }
}

TEST_F(Https, APlainHttpClientGetsNoAnswer) {
  start();
  RawConnection plain(port_);
  ASSERT_TRUE(plain.connected());
  ASSERT_TRUE(plain.send(raw_request("GET", "/health")));
  EXPECT_TRUE(plain.closed_by_server(5s));
  // And the server still serves TLS clients.
  const auto after = client()->Get("/health");
  ASSERT_TRUE(after) << httplib::to_string(after.error());
  EXPECT_EQ(after->status, 200);
}

TEST_F(Https, KeepAliveServesManyRequestsOnOneConnection) {
  start();
  auto c = client();
  c->set_keep_alive(true);
  for (int i = 0; i < 20; ++i) {
    const std::string body = R"({"entity_type":"user","entity_id":")" + std::to_string(i) +
                             R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
                             R"("run_at":"2099-01-01T00:00:00Z"})";
    const auto r = c->Post("/v1/reminders", body, "application/json");
    ASSERT_TRUE(r) << i << ": " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 201) << r->body;
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 20);
  // This client's one connection is the only one open (start()'s probes have gone).
  const bool one = wait_until(10s, [&] {
    const auto r = c->Get("/metrics");
    return r && sample_value(r->body, "nudge_api_connections_open") == 1;
  });
  EXPECT_TRUE(one) << api_->log();
}

TEST_F(Https, ManyConcurrentTlsClientsAreAllAnswered) {
  start();
  constexpr int kClients = 32;
  constexpr int kRequestsEach = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      auto c = client();
      c->set_keep_alive(true);
      for (int n = 0; n < kRequestsEach; ++n) {
        const auto r = c->Get("/health");
        if (r && r->status == 200) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequestsEach);
}

TEST_F(Https, ALargeBodyAndALargeAnswerCrossTheTlsLayerWhole) {
  start();
  auto c = client();
  // 200 reminders in one batch: a body of many TLS records, and an answer of many more.
  std::string items;
  for (int i = 0; i < 200; ++i) {
    if (i > 0) items += ',';
    items += R"({"entity_type":"user","entity_id":")" + std::to_string(i) +
             R"(","event_type":"e","channel":"log","schedule_type":"one_time",)"
             R"("run_at":"2099-01-01T00:00:00Z","payload":{"pad":")" +
             std::string(500, 'x') + R"("}})";
  }
  const auto r = c->Post("/v1/reminders/batch", "{\"items\":[" + items + "]}", "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200) << r->body.substr(0, 300);
  EXPECT_EQ(nlohmann::json::parse(r->body)["items"].size(), 200u);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.reminders"), 200);
}

// A chunked body is decoded by the connection, through its TLS session; past the limit it is
// refused.
TEST_F(Https, AChunkedBodyIsReadThroughTheTlsLayerUpToTheLimit) {
  start({{"NUDGE_API_MAX_BODY_BYTES", "65536"}});
  auto c = client();
  // `pieces` writes of `piece` bytes, sent chunked (httplib sends a body of unknown length so).
  const auto send = [&](const std::string& body, std::size_t pieces) {
    return c->Put(
        "/v1/flags/chunked",
        [&, sent = std::size_t{0}](std::size_t, httplib::DataSink& sink) mutable {
          if (sent < pieces) {
            sink.write(body.data(), body.size());
            ++sent;
          } else {
            sink.done();
          }
          return true;
        },
        "application/json");
  };
  const auto set = send(R"({"value": true})", 1);
  ASSERT_TRUE(set) << httplib::to_string(set.error());
  EXPECT_EQ(set->status, 200) << set->body;
  const std::string spaces(4096, ' ');
  const auto refused = send(spaces, 20);
  ASSERT_TRUE(refused) << httplib::to_string(refused.error());
  EXPECT_EQ(refused->status, 413) << refused->body;
}

// A stream's messages are written by the connection loop, not by httplib: over HTTPS they go
// through the connection's TLS session too.
TEST_F(Https, TheLiveStreamIsSentOverTls) {
  start({{"NUDGE_API_STREAM_HEARTBEAT_SECONDS", "1"}});
  std::mutex mutex;
  std::string received;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    auto c = client();
    c->Get("/v1/stream?types=flag", [&](const char* data, std::size_t size) {
      std::lock_guard lock(mutex);
      received.append(data, size);
      return !done.load();
    });
  });
  const auto has = [&](const std::string& text) {
    std::lock_guard lock(mutex);
    return received.find(text) != std::string::npos;
  };
  EXPECT_TRUE(wait_until(30s, [&] { return has("retry:"); })) << "the stream's head";
  const auto r = client()->Put("/v1/flags/over-tls", R"({"value": true})", "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(wait_until(30s, [&] { return has("over-tls"); })) << received;
  EXPECT_TRUE(has("event: flag"));
  done = true;
  reader.join();  // the next heartbeat ends the read
}

// ---- Refused starts ----

class HttpsSettings : public ::testing::Test {
 protected:
  // nudge-api's exit code and stderr with these settings (it stops before the database).
  Finished run_api(const std::map<std::string, std::string>& tls) {
    std::map<std::string, std::string> env{
        {"NUDGE_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none"},
        {"NUDGE_API_PORT", std::to_string(free_tcp_port())}};
    for (const auto& [k, v] : tls) env[k] = v;
    return run_program({program("nudge-api")}, env, 60s);
  }
  static std::string key_text(const fs::path& key) {
    std::ifstream in(key);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  SelfSigned tls_{"settings-" + std::to_string(::getpid())};
};

TEST_F(HttpsSettings, AMissingCertificateFileStopsTheStartNamingTheSetting) {
  const auto done = run_api({{"NUDGE_API_TLS_CERT", (tls_.dir / "none.pem").string()},
                             {"NUDGE_API_TLS_KEY", tls_.key.string()}});
  EXPECT_EQ(done.exit_code, 2);
  EXPECT_NE(done.err.find("api.tls_cert: cannot load a PEM certificate from " +
                          (tls_.dir / "none.pem").string() + " (No such file or directory)"),
            std::string::npos)
      << done.err;
}

TEST_F(HttpsSettings, AMissingOrDirectoryKeyFileStopsTheStartSayingWhy) {
  const auto missing = run_api({{"NUDGE_API_TLS_CERT", tls_.cert.string()},
                                {"NUDGE_API_TLS_KEY", (tls_.dir / "none.pem").string()}});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("api.tls_key: cannot load a PEM private key from " +
                             (tls_.dir / "none.pem").string() + " (No such file or directory)"),
            std::string::npos)
      << missing.err;
  const auto directory = run_api(
      {{"NUDGE_API_TLS_CERT", tls_.dir.string()}, {"NUDGE_API_TLS_KEY", tls_.key.string()}});
  EXPECT_EQ(directory.exit_code, 2);
  EXPECT_NE(directory.err.find("api.tls_cert: cannot load a PEM certificate from " +
                               tls_.dir.string() + " (Is a directory)"),
            std::string::npos)
      << directory.err;
}

TEST_F(HttpsSettings, AKeyThatIsNoKeyStopsTheStartWithoutShowingIt) {
  // The certificate given as the key, and the key as the certificate.
  const auto swapped = run_api(
      {{"NUDGE_API_TLS_CERT", tls_.key.string()}, {"NUDGE_API_TLS_KEY", tls_.cert.string()}});
  EXPECT_EQ(swapped.exit_code, 2);
  EXPECT_NE(swapped.err.find("api.tls_cert:"), std::string::npos) << swapped.err;
  const auto bad_key = run_api(
      {{"NUDGE_API_TLS_CERT", tls_.cert.string()}, {"NUDGE_API_TLS_KEY", tls_.cert.string()}});
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_NE(bad_key.err.find("api.tls_key: cannot load a PEM private key"), std::string::npos)
      << bad_key.err;
  // No line of the key appears in anything printed.
  const std::string key = key_text(tls_.key);
  std::istringstream lines(key);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() < 20 || line.starts_with("-----")) continue;
    EXPECT_EQ(swapped.err.find(line), std::string::npos);
    EXPECT_EQ(swapped.out.find(line), std::string::npos);
  }
}

TEST_F(HttpsSettings, AKeyOfAnotherCertificateStopsTheStart) {
  SelfSigned other("other-" + std::to_string(::getpid()));
  const auto done = run_api(
      {{"NUDGE_API_TLS_CERT", tls_.cert.string()}, {"NUDGE_API_TLS_KEY", other.key.string()}});
  EXPECT_EQ(done.exit_code, 2);
  EXPECT_NE(done.err.find("api.tls_key: cannot load a PEM private key from " + other.key.string() +
                          " (key values mismatch)"),
            std::string::npos)
      << done.err;
}

TEST_F(HttpsSettings, ACertificateWithoutItsKeyStopsTheStart) {
  const auto done = run_api({{"NUDGE_API_TLS_CERT", tls_.cert.string()}});
  EXPECT_EQ(done.exit_code, 2);
  EXPECT_NE(done.err.find("api.tls_key: must be set with api.tls_cert"), std::string::npos)
      << done.err;
}

}  // namespace
}  // namespace nudge::test
