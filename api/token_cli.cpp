#include "token_cli.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "access.hpp"
#include "nudge/config.hpp"
#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/startup.hpp"
#include "statements.hpp"
#include "token.hpp"

namespace nudge::api {
namespace {

constexpr const char* kUsage =
    "usage: nudge-api token create --name NAME --scopes SCOPES [--config FILE]\n"
    "       nudge-api token list [--config FILE]\n"
    "       nudge-api token revoke NAME [--config FILE]\n"
    "  NAME    1 to 100 letters, digits, dots, dashes or underscores; never reused\n"
    "  SCOPES  comma-separated: read (every GET of data), write (creates and changes), admin\n"
    "          (the audit trail), metrics (GET /metrics alone, for a scraper); a token holds\n"
    "          exactly the scopes it is given\n"
    "create prints the token on stdout, once: only its SHA-256 is stored.\n";

struct Args {
  std::string command;
  std::optional<std::string> name, scopes, config;
  std::vector<std::string> words;  // what is not an option
};

int usage_error(const std::string& problem) {
  std::fprintf(stderr, "nudge-api token: %s\n%s", problem.c_str(), kUsage);
  return 2;
}

int failure(const std::string& problem) {
  std::fprintf(stderr, "nudge-api token: %s\n", problem.c_str());
  return 1;
}

// nullopt (with the problem in `problem`) for arguments that do not parse.
std::optional<Args> parse(int argc, char** argv, std::string& problem) {
  Args args;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    std::optional<std::string>* option = a == "--name"     ? &args.name
                                         : a == "--scopes" ? &args.scopes
                                         : a == "--config" ? &args.config
                                                           : nullptr;
    if (option != nullptr) {
      if (i + 1 >= argc) {
        problem = a + " needs a value";
        return std::nullopt;
      }
      if (option->has_value()) {
        problem = a + " is given twice";
        return std::nullopt;
      }
      *option = argv[++i];
    } else if (a.starts_with("-")) {
      problem = "unknown option '" + a + "'";
      return std::nullopt;
    } else if (args.command.empty()) {
      args.command = a;
    } else {
      args.words.push_back(a);
    }
  }
  return args;
}

// What is wrong with the arguments of the command, or "".
std::string check(const Args& args) {
  if (args.command == "create") {
    if (!args.words.empty()) return "create takes no word '" + args.words[0] + "'";
    if (!args.name) return "create needs --name";
    if (!args.scopes) return "create needs --scopes";
    if (!valid_token_name(*args.name)) return "--name: must be a NAME as below";
    if (!parse_scopes(*args.scopes))
      return "--scopes: must be read, write, admin or metrics, comma-separated";
    return "";
  }
  if (args.name || args.scopes) return args.command + " takes neither --name nor --scopes";
  if (args.command == "list") return args.words.empty() ? "" : "list takes no word";
  if (args.command == "revoke") {
    if (args.words.size() != 1) return "revoke needs the NAME of one token";
    return valid_token_name(args.words[0]) ? "" : "NAME: must be a NAME as below";
  }
  return args.command.empty() ? "which command: create, list or revoke?"
                              : "unknown command '" + args.command + "'";
}

int create(pqxx::connection& conn, const Args& args) {
  const std::string token = new_token();
  const Scopes scopes = *parse_scopes(*args.scopes);
  pqxx::nontransaction(conn).exec_prepared("create_token", *args.name, token_hash_hex(token),
                                           scope_names(scopes));
  std::fprintf(stdout, "%s\n", token.c_str());
  std::fflush(stdout);
  std::fprintf(stderr,
               "nudge-api token: created token %s with scopes %s; it is shown only this once\n",
               args.name->c_str(), scope_names(scopes).c_str());
  return 0;
}

int list(pqxx::connection& conn) {
  const auto rows = pqxx::nontransaction(conn).exec_prepared("list_tokens");
  std::vector<std::vector<std::string>> table = {
      {"NAME", "SCOPES", "CREATED_AT", "LAST_USED_AT", "REVOKED_AT"}};
  for (const auto& row : rows) {
    table.emplace_back();
    for (const auto& field : row) table.back().push_back(field.c_str());
  }
  std::vector<std::size_t> width(table[0].size(), 0);
  for (const auto& line : table)
    for (std::size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  for (const auto& line : table) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) out += std::string(width[i] - line[i].size() + 2, ' ');
    }
    std::fprintf(stdout, "%s\n", out.c_str());
  }
  return 0;
}

int revoke(pqxx::connection& conn, const std::string& name) {
  const bool now = pqxx::nontransaction(conn).exec_prepared1("revoke_token", name)[0].as<bool>();
  std::fprintf(stderr,
               now ? "nudge-api token: revoked token %s\n"
                   : "nudge-api token: token %s was revoked already\n",
               name.c_str());
  return 0;
}

int run(const Args& args, const Config& config) {
  // A command typed at a prompt: a database still starting gets a few seconds, a wrong address
  // fails soon (the servers wait a minute).
  if (const int code =
          migrate_at_startup(config, "nudge-api token/migrate", std::chrono::seconds(3));
      code != 0)
    return code;
  try {
    auto conn = open_connection(config.database.url, "nudge-api token");
    set_up_token_connection(*conn);
    if (args.command == "create") return create(*conn, args);
    if (args.command == "list") return list(*conn);
    return revoke(*conn, args.words[0]);
  } catch (const pqxx::sql_error& e) {
    // NU409 (a taken name) and NU404 (no such token) are the answers to act on.
    std::string message = e.what();
    message = message.substr(0, message.find('\n'));
    if (message.rfind("ERROR:  ", 0) == 0) message = message.substr(8);
    return failure(redact(message, config.database.url));
  } catch (const std::exception& e) {
    return failure("cannot reach the database: " + database_error(e, config.database.url));
  }
}

}  // namespace

int token_command(int argc, char** argv) {
  if (argc == 1 && (std::string(argv[0]) == "--help" || std::string(argv[0]) == "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::string problem;
  const auto args = parse(argc, argv, problem);
  if (!args) return usage_error(problem);
  if (problem = check(*args); !problem.empty()) return usage_error(problem);
  Config config;
  try {
    config = load_config(args->config, process_environment());
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "nudge-api token: configuration error: %s\n", e.what());
    return 2;
  }
  log::set_level(log::parse_level(config.log.level));
  log::set_context({{"program", "nudge-api token"}});
  return run(*args, config);
}

}  // namespace nudge::api
