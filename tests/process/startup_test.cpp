// Starting nudge-worker: bad settings stop it at once with the key named; migrations applied by
// several processes at once are applied once.

#include <fstream>

#include "process/process_fixture.hpp"

namespace nudge::test {
namespace {

using Startup = ProcessTest;

TEST_F(Startup, UnknownKeyInTheConfigFileFailsNamingTheKey) {
  const auto file = dir_ / "typo.toml";
  std::ofstream(file) << "[worker]\nbatch_sise = 10\n";
  ChildProcess w(worker_command(file.string()), worker_env(db_.url()),
                 (dir_ / "typo.log").string());
  EXPECT_EQ(w.wait(kSlow), 2);
  EXPECT_NE(w.log().find("worker.batch_sise"), std::string::npos) << w.log();
}

TEST_F(Startup, BadValueFromTheEnvironmentFailsNamingTheKey) {
  ChildProcess w(worker_command(), worker_env(db_.url(), {{"NUDGE_WORKER_BATCH_SIZE", "abc"}}),
                 (dir_ / "bad-value.log").string());
  EXPECT_EQ(w.wait(kSlow), 2);
  EXPECT_NE(w.log().find("batch_size"), std::string::npos) << w.log();
  EXPECT_EQ(executions(), 0);
}

TEST_F(Startup, UnreachableDatabaseIsRetriedWithoutShowingItsPassword) {
  // Port 9 on loopback: nothing listens there.
  ChildProcess w(worker_command(), worker_env("postgresql://nudge:s3cr3t-pw@127.0.0.1:9/nudge"),
                 (dir_ / "unreachable.log").string());
  ASSERT_TRUE(wait_until(kSlow, [&] {
    return w.log().find("database unreachable") != std::string::npos;
  })) << w.log();
  EXPECT_TRUE(w.running());
  w.signal(SIGTERM);
  ASSERT_TRUE(w.wait(kSlow).has_value());
  EXPECT_EQ(w.log().find("s3cr3t-pw"), std::string::npos) << w.log();
}

// A one-shot command answers soon: --migrate-only retries an unreachable database for a few
// seconds, then exits 1 saying why, while a worker starting as a service waits on (above).
TEST_F(Startup, MigrateOnlyGivesUpOnAnUnreachableDatabaseWithinSecondsNamingTheProblem) {
  auto command = worker_command();
  command.push_back("--migrate-only");
  const auto started = std::chrono::steady_clock::now();
  ChildProcess w(command, worker_env("postgresql://nudge:s3cr3t-pw@127.0.0.1:9/nudge"),
                 (dir_ / "migrate-unreachable.log").string());
  EXPECT_EQ(w.wait(std::chrono::seconds(20)), 1) << w.log();
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, std::chrono::seconds(4)) << "it retried before giving up";
  EXPECT_LT(waited, std::chrono::seconds(15));
  EXPECT_NE(w.log().find("database unreachable, giving up"), std::string::npos) << w.log();
  EXPECT_NE(w.log().find("127.0.0.1:9"), std::string::npos) << "it names the database";
  EXPECT_EQ(w.log().find("s3cr3t-pw"), std::string::npos) << w.log();
}

// A connection string libpq itself refuses asks no server: retrying for a minute would not help.
TEST_F(Startup, ABadConnectionStringStopsTheStartAtOnceNamingIt) {
  auto command = worker_command();
  command.push_back("--migrate-only");
  const auto started = std::chrono::steady_clock::now();
  ChildProcess w(command,
                 worker_env("postgresql://nudge:s3cr3t-pw@127.0.0.1:9/nudge?sslmode=bogus"),
                 (dir_ / "migrate-bad-string.log").string());
  EXPECT_EQ(w.wait(std::chrono::seconds(20)), 2) << w.log();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  EXPECT_NE(w.log().find("the database URL is not valid"), std::string::npos) << w.log();
  EXPECT_NE(w.log().find("sslmode"), std::string::npos) << "it names what is wrong";
  EXPECT_EQ(w.log().find("s3cr3t-pw"), std::string::npos) << w.log();
  EXPECT_EQ(w.log().find("retrying\""), std::string::npos) << "it did not retry: " << w.log();
}

TEST(StartupMigrations, ConcurrentMigrateOnlyAppliesEachMigrationOnce) {
  const TestDatabase db(TestDatabase::Start::empty);
  const std::string& name = db.name();
  const std::string& url = db.url();
  const auto log_dir = std::filesystem::temp_directory_path();
  std::vector<std::unique_ptr<ChildProcess>> migrators;
  for (int round = 0; round < 2; ++round) {  // the second round finds nothing to do
    for (int i = 0; i < 4; ++i) {
      migrators.push_back(std::make_unique<ChildProcess>(
          std::vector<std::string>{program("nudge-worker"), "--migrate-only"},
          std::map<std::string, std::string>{{"NUDGE_DATABASE_URL", url}},
          (log_dir / (name + "-" + std::to_string(round) + "-" + std::to_string(i) + ".log"))
              .string()));
    }
    for (auto& m : migrators) EXPECT_EQ(m->wait(kSlow), 0) << m->log();
    if (!HasFailure()) {
      for (auto& m : migrators) m->remove_logs();
    }
    migrators.clear();
  }
  {
    pqxx::connection conn(url);
    pqxx::work tx(conn);
    const auto r =
        tx.exec("SELECT count(*), count(DISTINCT version), min(version) FROM nudge.migrations");
    EXPECT_GE(r[0][0].as<long>(), 1);
    EXPECT_EQ(r[0][0].as<long>(), r[0][1].as<long>());
    EXPECT_EQ(r[0][2].as<long>(), 1);
    EXPECT_EQ(tx.exec("SELECT to_regclass('nudge.reminders') IS NOT NULL")[0][0].as<bool>(), true);
  }
}

}  // namespace
}  // namespace nudge::test
