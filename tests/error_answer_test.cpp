// What a request is answered when the database refuses it: the failures a client should simply
// send again are a 503 with Retry-After, never a 500. (libpqxx 6 does not derive deadlocks and
// serialization failures from sql_error: they were answered 500.)

#include <gtest/gtest.h>

#include <exception>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>

#include "errors.hpp"

namespace nudge::api {
namespace {

httplib::Response answer_to(std::exception_ptr error) {
  httplib::Request req;
  httplib::Response res;
  send_exception(req, res, std::move(error));
  return res;
}

TEST(ErrorAnswer, WhatMaySucceedIfSentAgainIsA503WithRetryAfter) {
  const std::exception_ptr errors[] = {
      std::make_exception_ptr(pqxx::deadlock_detected("ERROR:  deadlock detected")),
      std::make_exception_ptr(pqxx::serialization_failure(
          "ERROR:  could not serialize access due to concurrent update")),
      std::make_exception_ptr(pqxx::broken_connection("server closed the connection")),
  };
  for (const auto& error : errors) {
    const httplib::Response res = answer_to(error);
    EXPECT_EQ(res.status, 503);
    EXPECT_EQ(res.get_header_value("Retry-After"), "1");
    EXPECT_EQ(nlohmann::json::parse(res.body)["error"]["code"], "unavailable") << res.body;
  }
}

// It ran as long as the limit: sent again at once, it would likely meet it again (explore21a #6).
TEST(ErrorAnswer, ARequestTheStatementTimeoutCancelledIsToldToWaitAsLong) {
  const auto cancelled = std::make_exception_ptr(
      pqxx::sql_error("ERROR:  canceling statement due to statement timeout", "", "57014"));
  set_statement_timeout_ms(10000);
  httplib::Response res = answer_to(cancelled);
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.get_header_value("Retry-After"), "10");
  const auto error = nlohmann::json::parse(res.body)["error"];
  EXPECT_EQ(error["code"], "unavailable");
  EXPECT_NE(error["message"].get<std::string>().find("statement_timeout_ms (10000 ms)"),
            std::string::npos)
      << res.body;
  EXPECT_NE(error["message"].get<std::string>().find("a smaller batch"), std::string::npos);

  set_statement_timeout_ms(250);
  EXPECT_EQ(answer_to(cancelled).get_header_value("Retry-After"), "1");
  set_statement_timeout_ms(3600000);
  EXPECT_EQ(answer_to(cancelled).get_header_value("Retry-After"), "60");
  set_statement_timeout_ms(0);  // no limit: only an operator cancels
  res = answer_to(cancelled);
  EXPECT_EQ(res.get_header_value("Retry-After"), "1");
  EXPECT_NE(res.body.find("an operator cancelled"), std::string::npos) << res.body;
}

TEST(ErrorAnswer, AnUnknownDatabaseErrorIsA500WithoutItsText) {
  const httplib::Response res =
      answer_to(std::make_exception_ptr(pqxx::sql_error("ERROR:  secret detail", "", "XX000")));
  EXPECT_EQ(res.status, 500);
  EXPECT_FALSE(res.has_header("Retry-After"));
  EXPECT_EQ(res.body.find("secret detail"), std::string::npos) << res.body;
}

}  // namespace
}  // namespace nudge::api
