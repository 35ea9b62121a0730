// --version: one line naming the program and the version CMake's project() says (with the git
// commit when the build knew it), printed before any setting is read or the database is
// touched, so it answers on a host where nothing is configured yet.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "support/processes.hpp"

namespace nudge::test {
namespace {

using namespace std::chrono_literals;

TEST(Version, EachProgramPrintsItsNameAndTheProjectVersion) {
  for (const std::string name : {"nudge-api", "nudge-worker"}) {
    const auto run = run_program({program(name), "--version"}, {}, 30s);
    EXPECT_EQ(run.exit_code, 0) << name << ": " << run.err;
    EXPECT_EQ(run.out, expected_version_line(name) + "\n");
    EXPECT_EQ(run.err, "");
  }
}

TEST(Version, ReadsNoSettingsAndTouchesNoDatabase) {
  // Each of these stops a program that reads its settings (exit 2) or makes it retry an
  // unreachable database for a minute, logging as it goes.
  const std::map<std::string, std::string> broken{
      {"NUDGE_WORKER_BATCH_SIZE", "not a number"},
      {"NUDGE_DATABASE_URL", "postgresql://nudge:s3cr3t@127.0.0.1:9/nudge"}};
  for (const std::string name : {"nudge-api", "nudge-worker"}) {
    const auto run = run_program(
        {program(name), "--config", "/nonexistent/nudge.toml", "--version"}, broken, 10s);
    EXPECT_EQ(run.exit_code, 0) << name << ": " << run.err;
    EXPECT_EQ(run.out, expected_version_line(name) + "\n");
    EXPECT_EQ(run.err, "");
  }
}

}  // namespace
}  // namespace nudge::test
