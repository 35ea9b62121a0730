// `nudge-api token create|list|revoke` as an operator runs it: a real process against a real
// database, its output, its exit codes, and every refusal.

#include <fstream>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using TokenCommand = DatabaseTest;

// nudge_ + 36 letters or digits.
bool looks_like_a_token(const std::string& text) {
  if (text.size() != 42 || text.rfind("nudge_", 0) != 0) return false;
  for (std::size_t i = 6; i < text.size(); ++i)
    if (!std::isalnum(static_cast<unsigned char>(text[i]))) return false;
  return true;
}

TEST_F(TokenCommand, CreatePrintsTheTokenAloneOnOneLineAndStoresOnlyItsHash) {
  const Finished run =
      token_command(db_.url(), {"create", "--name", "ci", "--scopes", "write,read"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_FALSE(run.out.empty());
  EXPECT_EQ(run.out.back(), '\n');
  const std::string token = run.out.substr(0, run.out.size() - 1);
  EXPECT_TRUE(looks_like_a_token(token)) << run.out;
  EXPECT_EQ(run.err.find(token), std::string::npos) << "the token goes to stdout only";
  EXPECT_EQ(value<std::string>("SELECT array_to_string(scopes, ',') FROM nudge.api_tokens"),
            "read,write");
  EXPECT_TRUE(value<bool>("SELECT token_hash = sha256($1::bytea) FROM nudge.api_tokens", token));
  EXPECT_FALSE(value<bool>("SELECT t::text LIKE '%' || $1 || '%' FROM nudge.api_tokens t",
                           token.substr(6, 12)));
}

TEST_F(TokenCommand, ATakenNameIsRefusedWithExitOneEvenWhenRevoked) {
  ASSERT_EQ(token_command(db_.url(), {"create", "--name", "ci", "--scopes", "read"}).exit_code, 0);
  const Finished again = token_command(db_.url(), {"create", "--name", "ci", "--scopes", "admin"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(again.out.empty()) << again.out;
  EXPECT_NE(again.err.find("a token named ci exists already"), std::string::npos) << again.err;
  ASSERT_EQ(token_command(db_.url(), {"revoke", "ci"}).exit_code, 0);
  EXPECT_EQ(token_command(db_.url(), {"create", "--name", "ci", "--scopes", "read"}).exit_code, 1);
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.api_tokens"), 1);
}

TEST_F(TokenCommand, BadArgumentsPrintTheUsageAndExitTwoTouchingNothing) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"make"},
      {"create"},
      {"create", "--name", "ci"},
      {"create", "--scopes", "read"},
      {"create", "--name", "ci", "--scopes", "root"},
      {"create", "--name", "ci", "--scopes", "read,"},
      {"create", "--name", "c i", "--scopes", "read"},
      {"create", "--name", "-ci", "--scopes", "read"},
      {"create", "--name", "ci", "--scopes", "read", "--name", "cd"},
      {"create", "--name", "ci", "--scopes", "read", "extra"},
      {"create", "--name"},
      {"create", "--name", "ci", "--scopes", "read", "--force"},
      {"list", "all"},
      {"list", "--name", "ci"},
      {"revoke"},
      {"revoke", "a", "b"},
      {"revoke", "a b"},
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    SCOPED_TRACE(shown);
    const Finished run = token_command(db_.url(), args);
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_TRUE(run.out.empty()) << run.out;
    EXPECT_NE(run.err.find("usage: nudge-api token create"), std::string::npos) << run.err;
  }
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.api_tokens"), 0);
  const Finished help = token_command(db_.url(), {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("usage: nudge-api token create"), std::string::npos);
}

TEST_F(TokenCommand, BadSettingsAndAnUnreachableDatabaseAreClearFailures) {
  const Finished bad = token_command(db_.url(), {"list"}, {{"NUDGE_API_AUTH", "maybe"}});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("api.auth"), std::string::npos) << bad.err;
  // Port 9 on loopback: nothing listens there. The password must not show.
  const Finished down = token_command("postgresql://nudge:s3cr3t-pw@127.0.0.1:9/nudge",
                                      {"create", "--name", "ci", "--scopes", "read"});
  EXPECT_EQ(down.exit_code, 1) << down.err;
  EXPECT_TRUE(down.out.empty()) << down.out;
  EXPECT_EQ(down.err.find("s3cr3t-pw"), std::string::npos) << down.err;
}

TEST_F(TokenCommand, ListShowsNamesScopesAndTimesButNeverHashes) {
  const Finished ci = token_command(db_.url(), {"create", "--name", "ci", "--scopes", "read"});
  ASSERT_EQ(ci.exit_code, 0);
  ASSERT_EQ(
      token_command(db_.url(), {"create", "--name", "ops", "--scopes", "admin,write"}).exit_code,
      0);
  sql("UPDATE nudge.api_tokens SET last_used_at = '2026-01-02T03:04:05Z' WHERE name = 'ci'");
  ASSERT_EQ(token_command(db_.url(), {"revoke", "ops"}).exit_code, 0);
  const Finished list = token_command(db_.url(), {"list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < list.out.size();) {
    const auto end = list.out.find('\n', at);
    lines.push_back(list.out.substr(at, end - at));
    at = end + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << list.out;
  EXPECT_EQ(lines[0].substr(0, 4), "NAME");
  EXPECT_NE(lines[0].find("LAST_USED_AT"), std::string::npos);
  EXPECT_EQ(lines[1].substr(0, 3), "ci ");
  EXPECT_NE(lines[1].find("2026-01-02T03:04:05Z"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2].substr(0, 4), "ops ");
  EXPECT_NE(lines[2].find("write,admin"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[1].back(), '-') << "not revoked";
  EXPECT_EQ(lines[2].back(), 'Z') << "revoked";
  const std::string hash = value<std::string>(
      "SELECT encode(token_hash, 'hex') FROM "
      "nudge.api_tokens WHERE name = 'ci'");
  EXPECT_EQ(list.out.find(hash.substr(0, 12)), std::string::npos);
  EXPECT_EQ(list.out.find(ci.out.substr(6, 12)), std::string::npos);
}

TEST_F(TokenCommand, RevokeMarksOnceAndAnUnknownNameExitsOne) {
  ASSERT_EQ(token_command(db_.url(), {"create", "--name", "ci", "--scopes", "read"}).exit_code, 0);
  const Finished first = token_command(db_.url(), {"revoke", "ci"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.err.find("revoked token ci"), std::string::npos) << first.err;
  const std::string at = value<std::string>("SELECT revoked_at::text FROM nudge.api_tokens");
  const Finished again = token_command(db_.url(), {"revoke", "ci"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.err.find("was revoked already"), std::string::npos) << again.err;
  EXPECT_EQ(value<std::string>("SELECT revoked_at::text FROM nudge.api_tokens"), at);
  const Finished unknown = token_command(db_.url(), {"revoke", "nobody"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no token is named nobody"), std::string::npos) << unknown.err;
}

TEST_F(TokenCommand, ItReadsTheSameConfigFileAsTheServer) {
  const auto file =
      std::filesystem::temp_directory_path() / ("nudge-token-" + db_.name() + ".toml");
  std::ofstream(file) << "[database]\nurl = \"" << db_.url() << "\"\n";
  // The variable would point elsewhere; the file is what is read when the variable is unset.
  const Finished run =
      token_command("", {"create", "--name", "ci", "--scopes", "read", "--config", file.string()});
  // Also written as the server is started: --config before the command.
  const Finished before = run_program({program("nudge-api"), "--config", file.string(), "token",
                                       "create", "--name", "ops", "--scopes", "read"},
                                      {}, std::chrono::seconds(60));
  std::filesystem::remove(file);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(value<long>("SELECT count(*) FROM nudge.api_tokens"), 2);
}

}  // namespace
}  // namespace nudge::test
