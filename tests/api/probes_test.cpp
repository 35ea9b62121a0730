// /livez and /readyz of nudge-api, as an orchestrator calls them: live without the database,
// ready only with a reachable database holding a schema this binary knows, each check listed
// with ?verbose; /health and /ready answer as before.

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

struct Text {
  int status = 0;
  std::string body;
  std::string content_type;
};

class Probes : public ApiTest {
 protected:
  Text text(const std::string& path) {
    const auto r = client_->Get(path.c_str());
    if (!r) return {};
    return {r->status, r->body, r->get_header_value("Content-Type")};
  }
};

TEST_F(Probes, LiveAndReadyAnswerOk) {
  for (const std::string path : {"/livez", "/readyz"}) {
    const Text r = text(path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.body, "ok\n") << path;
    EXPECT_EQ(r.content_type, "text/plain; charset=utf-8") << path;
  }
}

TEST_F(Probes, VerboseListsEachCheck) {
  EXPECT_EQ(text("/livez?verbose").body, "[+]ping ok\nlivez check passed\n");
  const Text ready = text("/readyz?verbose");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "[+]database ok\n[+]schema ok\n[+]grants ok\nreadyz check passed\n");
  EXPECT_EQ(text("/readyz?verbose=1").body, ready.body);
}

TEST_F(Probes, AMissingMigrationMakesItUnreadyButStillLive) {
  sql("DELETE FROM nudge.migrations WHERE version = (SELECT max(version) FROM nudge.migrations)");
  const std::string newest =
      value<std::string>("SELECT name FROM nudge.migrations ORDER BY version DESC LIMIT 1");
  const Text ready = text("/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("[+]database ok\n[-]schema failed: migration "), std::string::npos)
      << ready.body;
  EXPECT_NE(ready.body.find(" is not applied\n[-]grants failed: not checked"), std::string::npos)
      << ready.body;
  EXPECT_EQ(ready.body.find(newest + " is not applied"), std::string::npos);  // the one removed
  EXPECT_EQ(text("/livez").status, 200);
  EXPECT_EQ(get("/ready").status, 503);
}

TEST_F(Probes, ABreakingMigrationThisBinaryDoesNotKnowMakesItUnready) {
  sql("INSERT INTO nudge.migrations (version, name, checksum, breaking) "
      "VALUES (9999, '9999_future', 'x', true)");
  const Text ready = text("/readyz?verbose");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.body,
            "[+]database ok\n[-]schema failed: the database is at migration 9999_future, which "
            "this binary does not know\n[-]grants failed: not checked: the schema is not one "
            "this binary knows\nreadyz check failed\n");
  sql("UPDATE nudge.migrations SET breaking = false WHERE version = 9999");
  EXPECT_EQ(text("/readyz").status, 200);  // a newer additive migration is fine
}

TEST_F(Probes, WithTheDatabaseGoneItIsUnreadyButStillLive) {
  conn_.disconnect();
  {
    pqxx::connection admin(admin_url());
    pqxx::nontransaction(admin).exec("DROP DATABASE " + admin.quote_name(db_.name()) +
                                     " WITH (FORCE)");
  }
  const Text ready = text("/readyz?verbose");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.body,
            "[-]database failed: the database is unreachable\n"
            "[-]schema failed: not checked: the database is unreachable\n"
            "[-]grants failed: not checked: the database is unreachable\nreadyz check failed\n");
  // No connection detail reaches the answer.
  EXPECT_EQ(ready.body.find(db_.name()), std::string::npos);
  EXPECT_EQ(text("/livez").status, 200);
  EXPECT_EQ(text("/livez?verbose").body, "[+]ping ok\nlivez check passed\n");
}

TEST_F(Probes, AnUnknownQueryParameterIsRefusedNamingIt) {
  const auto r = get("/readyz?verbos");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_field(), "verbos");
}

}  // namespace
}  // namespace nudge::test
