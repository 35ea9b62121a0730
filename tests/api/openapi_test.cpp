// /openapi.json describes exactly the routes the server answers, and every error code they can
// send; every route refuses a query parameter it does not take.

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "api/api_fixture.hpp"

namespace nudge::test {
namespace {

using OpenApi = ApiTest;

// Answered by a route: anything but the "no such route" 404 and 405.
bool answered(const Reply& r) {
  if (r.status == 405 || r.status == 0) return false;
  return !(r.status == 404 && r.body["error"]["message"] == "no such route");
}

TEST_F(OpenApi, EveryDocumentedRouteIsAnsweredAndEveryOtherMethodIsNot) {
  const auto doc = get("/openapi.json");
  ASSERT_EQ(doc.status, 200);
  EXPECT_EQ(doc.body["openapi"].get<std::string>().substr(0, 2), "3.");
  ASSERT_TRUE(doc.body["paths"].is_object());
  const long id = create_one("doc");
  int documented = 0;
  for (const auto& [path, item] : doc.body["paths"].items()) {
    const std::string concrete = concrete_path(path, id);
    for (const auto& method : kRouteMethods) {
      SCOPED_TRACE(method + " " + path);
      const bool in_doc = item.contains(lowercase(method));
      const auto r = send(method, concrete, "{}");
      EXPECT_EQ(answered(r), in_doc) << r.status << " " << r.body.dump();
      if (in_doc) {
        ++documented;
        EXPECT_TRUE(item[lowercase(method)].contains("responses"));
      }
    }
  }
  // probes, metrics, the overview, reminders (one and in bulk), flags, schedules (preview
  // and parse), contacts, rules, events, the audit trail, the caller's token, targets (the busy
  // ones, and closing one), the stream
  EXPECT_EQ(documented, 45);
  // Paths outside the document are not answered at all (the dashboard's and the docs' pages,
  // which are not API routes, are tested in dashboard_test.cpp).
  for (const std::string path :
       {"/ui", "/v1", "/v1/reminder", "/v1/flags/a/b", "/v1/reminders/1/stop", "/v1/contacts/user",
        "/v1/contacts/user/1/email/x", "/v1/rules/1/x", "/v1/events/1/effects", "/v1/targets/x"}) {
    EXPECT_EQ(get(path).status, 404) << path;
  }
}

// A typo in a query parameter is a 400 on every route, not silently ignored (it was on creates,
// PATCH, flags, schedules and the single pause, resume and cancel).
TEST_F(OpenApi, EveryRouteRefusesAQueryParameterItDoesNotTake) {
  const auto doc = get("/openapi.json");
  ASSERT_EQ(doc.status, 200);
  const long id = create_one("params");
  int routes = 0;
  for (const auto& [path, item] : doc.body["paths"].items()) {
    std::string concrete = concrete_path(path, id);
    concrete += concrete.find('?') == std::string::npos ? "?colour=red" : "&colour=red";
    for (const auto& method : kRouteMethods) {
      if (!item.contains(lowercase(method))) continue;
      ++routes;
      SCOPED_TRACE(method + " " + concrete);
      const auto r = send(method, concrete, method == "GET" ? "" : "{}");
      EXPECT_EQ(r.status, 400) << r.body.dump();
      EXPECT_EQ(r.body["error"]["code"], "unknown_field") << r.body.dump();
      EXPECT_EQ(r.error_field(), "colour") << r.body.dump();
    }
  }
  EXPECT_EQ(routes, 45);
  // What each route does take still works.
  EXPECT_EQ(get("/livez?verbose").status, 200);
  EXPECT_EQ(get("/v1/reminders?limit=1&status=ACTIVE").status, 200);
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(id)).status, 200);
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(id) + "/executions?limit=5").status, 200);
  // The pages are not API routes: a link that gained a query string still opens them.
  EXPECT_EQ(get("/?utm_source=mail").status, 200);
  EXPECT_EQ(get("/docs?x=1").status, 200);
}

// The document's response `r`, its $ref followed.
const json& resolved(const json& doc, const json& r) {
  if (!r.contains("$ref")) return r;
  const std::string ref = r["$ref"];  // #/components/responses/<name>
  return doc["components"]["responses"][ref.substr(ref.rfind('/') + 1)];
}

// A client generated from the document saw 503 (database busy) and 414 as undeclared statuses
// (explore14a #5, #8).
TEST_F(OpenApi, EveryRouteListsTheStatusesAnyRequestCanGet) {
  const auto doc = get("/openapi.json");
  ASSERT_EQ(doc.status, 200);
  int checked = 0;
  for (const auto& [path, item] : doc.body["paths"].items()) {
    for (const auto& method : kRouteMethods) {
      if (!item.contains(lowercase(method))) continue;
      SCOPED_TRACE(method + " " + path);
      const json& responses = item[lowercase(method)]["responses"];
      EXPECT_TRUE(responses.contains("414"));
      // Its token is looked up in the database, and so is what it asks for.
      if (!responses.contains("401")) continue;
      ++checked;
      ASSERT_TRUE(responses.contains("503"));
      EXPECT_TRUE(resolved(doc.body, responses["503"])["headers"].contains("Retry-After"));
    }
  }
  EXPECT_EQ(checked, 40);
}

// Each query parameter the server takes only some values of says them: an enum, and 1..500 for
// limit (the server refused what the schema allowed).
TEST_F(OpenApi, AQueryParametersSchemaSaysWhatTheServerTakes) {
  const auto doc = get("/openapi.json");
  ASSERT_EQ(doc.status, 200);
  const long id = create_one("params");
  int limits = 0;
  for (const auto& [path, item] : doc.body["paths"].items()) {
    if (!item.contains("get") || !item["get"].contains("parameters")) continue;
    const std::string concrete = concrete_path(path, id);
    const char join = concrete.find('?') == std::string::npos ? '?' : '&';
    for (const auto& param : item["get"]["parameters"]) {
      if (param["in"] != "query" || param["name"] == "types") continue;
      const std::string name = param["name"];
      const json& schema = param["schema"];
      SCOPED_TRACE(path + " " + name);
      if (name == "limit") {
        ++limits;
        EXPECT_EQ(schema.value("minimum", 0), 1);
        EXPECT_EQ(schema.value("maximum", 0), 500);
        EXPECT_EQ(get(concrete + join + "limit=501").error_field(), "limit");
        EXPECT_EQ(get(concrete + join + "limit=500").status, 200);
        continue;
      }
      const Reply other = get(concrete + join + name + "=zzz");
      // A text the server refuses is one it takes only some values of (a cursor aside).
      const bool choice = other.status == 400 && other.error_field() == name &&
                          schema["type"] == "string" && name != "cursor";
      EXPECT_EQ(schema.contains("enum"), choice) << other.body.dump();
      if (!schema.contains("enum")) continue;
      for (const auto& value : schema["enum"]) {
        EXPECT_NE(get(concrete + join + name + "=" + value.get<std::string>()).status, 400)
            << value;
      }
    }
  }
  EXPECT_EQ(limits, 8);
}

// The schemas said no maximum for max_fires, and any 1 to 200 characters for a bulk change's
// channel, where the server refuses more than 2147483647 and any other than its three.
TEST_F(OpenApi, ABodysBoundsAreTheServers) {
  const auto doc = get("/openapi.json");
  ASSERT_EQ(doc.status, 200);
  const json& schemas = doc.body["components"]["schemas"];
  for (const std::string schema : {"NewReminder", "Reschedule"}) {
    const json& max_fires = schemas[schema]["properties"]["max_fires"];
    EXPECT_EQ(max_fires.value("maximum", 0L), 2147483647L) << schema;
  }
  const long id = create_one("bounds", R"(,"max_fires":2147483647)");
  EXPECT_EQ(
      patch("/v1/reminders/" + std::to_string(id), R"({"max_fires":2147483648})").error_field(),
      "max_fires");
  const json& channel = schemas["BulkChange"]["properties"]["channel"];
  EXPECT_EQ(channel["enum"], json({"log", "webhook", "email"}));
  EXPECT_EQ(post("/v1/reminders/pause", R"({"channel":"sms"})").error_field(), "channel");
  EXPECT_EQ(post("/v1/reminders/pause", R"({"channel":"email"})").status, 200);
}

// Splits the arguments of the call whose '(' is at `open` in `text` (nested calls, strings,
// characters and raw strings kept whole).
std::vector<std::string> call_arguments(const std::string& text, std::size_t open) {
  std::vector<std::string> args(1);
  int depth = 0;
  for (std::size_t i = open + 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == 'R' && text.compare(i, 2, "R\"") == 0) {
      const std::size_t paren = text.find('(', i);
      const std::string end = ")" + text.substr(i + 2, paren - i - 2) + "\"";
      const std::size_t close = text.find(end, paren);
      args.back() += text.substr(i, close + end.size() - i);
      i = close + end.size() - 1;
      continue;
    }
    if (c == '"' || c == '\'') {
      std::size_t j = i + 1;
      while (j < text.size() && text[j] != c) j += text[j] == '\\' ? 2 : 1;
      args.back() += text.substr(i, j + 1 - i);
      i = j;
      continue;
    }
    if (c == '(' || c == '{' || c == '[') ++depth;
    if (c == ')' || c == '}' || c == ']') {
      if (depth == 0) break;
      --depth;
    }
    if (c == ',' && depth == 0) {
      args.emplace_back();
      continue;
    }
    args.back() += c;
  }
  return args;
}

// Every error code nudge-api's code can send: the code argument of each ApiError, bad_field,
// send_error, error_json and error_body call in api/ that is written as a literal.
std::set<std::string> codes_in_the_code() {
  const std::map<std::string, std::size_t> code_argument = {
      {"ApiError", 1}, {"bad_field", 1}, {"send_error", 2}, {"error_json", 0}, {"error_body", 0}};
  std::set<std::string> codes;
  for (const auto& file : std::filesystem::directory_iterator(NUDGE_SOURCE_DIR "/api")) {
    if (file.path().extension() != ".cpp") continue;
    std::ifstream in(file.path());
    std::stringstream text;
    text << in.rdbuf();
    const std::string code = text.str();
    for (const auto& [name, index] : code_argument) {
      for (auto at = code.find(name + "("); at != std::string::npos;
           at = code.find(name + "(", at + 1)) {
        const char before = at == 0 ? ' ' : code[at - 1];
        if (std::isalnum(static_cast<unsigned char>(before)) || before == '_') continue;
        const auto args = call_arguments(code, at + name.size());
        if (args.size() <= index) continue;
        std::string arg = args[index];
        arg.erase(0, arg.find_first_not_of(" \n"));
        arg.erase(arg.find_last_not_of(" \n") + 1);
        if (arg.size() > 2 && arg.front() == '"' && arg.back() == '"')
          codes.insert(arg.substr(1, arg.size() - 2));
      }
    }
  }
  return codes;
}

// A client that checks answers against the document refused 401, 403 and 429: their codes
// were not in it.
TEST_F(OpenApi, EveryErrorCodeTheCodeCanSendIsInTheDocument) {
  const auto doc = get("/openapi.json");
  ASSERT_EQ(doc.status, 200);
  const json& listed = doc.body["components"]["schemas"]["Error"]["properties"]["error"]
                               ["properties"]["code"]["enum"];
  ASSERT_TRUE(listed.is_array());
  const std::set<std::string> documented(listed.begin(), listed.end());
  const std::set<std::string> sent = codes_in_the_code();
  for (const std::string code : {"unauthorized", "forbidden", "rate_limited", "invalid_value",
                                 "internal", "unsupported_encoding", "lagged"})
    EXPECT_TRUE(sent.contains(code)) << code << ": the scan of api/*.cpp missed it";
  for (const auto& code : sent) EXPECT_TRUE(documented.contains(code)) << code;
  for (const auto& code : documented) EXPECT_TRUE(sent.contains(code)) << code << " is never sent";
}

}  // namespace
}  // namespace nudge::test
