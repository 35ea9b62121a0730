// /openapi.json describes exactly the routes the server answers; every route refuses a query
// parameter it does not take.

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
  // and parse), contacts, rules, events, the audit trail, targets, the stream
  EXPECT_EQ(documented, 40);
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
  EXPECT_EQ(routes, 40);
  // What each route does take still works.
  EXPECT_EQ(get("/livez?verbose").status, 200);
  EXPECT_EQ(get("/v1/reminders?limit=1&status=ACTIVE").status, 200);
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(id)).status, 200);
  EXPECT_EQ(get("/v1/reminders/" + std::to_string(id) + "/executions?limit=5").status, 200);
  // The pages are not API routes: a link that gained a query string still opens them.
  EXPECT_EQ(get("/?utm_source=mail").status, 200);
  EXPECT_EQ(get("/docs?x=1").status, 200);
}

}  // namespace
}  // namespace nudge::test
