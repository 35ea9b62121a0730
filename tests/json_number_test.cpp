// JSON numbers the API reads as doubles (api/json_number.hpp): a body is refused, naming the
// number's path, when storing what was read would change the number silently.

#include "json_number.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "input.hpp"

namespace nudge::api {
namespace {

TEST(JsonNumber, ANumberReadsExactlyWhenItsShortestDecimalIsTheSameNumber) {
  for (const auto& [value, text] : std::vector<std::pair<double, std::string>>{
           {0.1, "0.1"},
           {100.0, "1.0E+2"},
           {100.0, "100.000"},
           {1e30, "1e30"},
           {1e30, "1000000000000000000000000000000"},
           {-0.0, "-0.0"},
           {0.0, "0e5"},
           {120.5, "120.50"},
           {0.001, "0.001"},
           {-2.5e-7, "-25e-8"},
           {18446744073709551616.0, "18446744073709552000"},
       }) {
    EXPECT_TRUE(reads_exactly(value, text)) << text;
  }
  for (const auto& [value, text] : std::vector<std::pair<double, std::string>>{
           {12345678901234568.0, "12345678901234567.89"},
           {1.2345678901234568e29, "123456789012345678901234567890"},
           {3.141592653589793, "3.14159265358979323846"},
           {0.0, "1e-400"},
           {0.1, "0.10000000000000000001"},
           // Whole numbers past 64 bits that a double holds exactly were written back as
           // 18446744073709552000 (explore14a #1).
           {18446744073709551616.0, "18446744073709551616"},
           {-18446744073709551616.0, "-18446744073709551616"},
           {73786976294838206464.0, "73786976294838206464"},
       }) {
    EXPECT_FALSE(reads_exactly(value, text)) << text;
  }
}

TEST(JsonNumber, ABodyWithANumberThatWouldChangeIsRefusedNamingIt) {
  try {
    parse_object(R"({"payload": {"money": 12345678901234567.89}})");
    FAIL() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.field(), "payload.money");
    EXPECT_EQ(std::string(e.what()).rfind("payload.money: 12345678901234567.89 cannot be kept "
                                          "exactly",
                                          0),
              0u)
        << e.what();
  }
  try {
    parse_object(R"({"items": [{"data": {"n": [1, 1e-400]}}]})");
    FAIL() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.field(), "items[0].data.n[1]");
  }
  // Past a double's range: JSON all the same, so named, not "not valid JSON" (explore32a F4).
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"interval_seconds": 1e309})", "interval_seconds"},
           {R"({"data": {"a": [0, -1E400]}})", "data.a[1]"}}) {
    try {
      parse_object(body);
      FAIL() << "accepted " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_EQ(e.code(), "invalid_value");
      EXPECT_EQ(e.field(), field);
      EXPECT_NE(std::string(e.what()).find("past a 64-bit float's range"), std::string::npos)
          << e.what();
    }
  }
  const auto kept = parse_object(
      R"({"a": 0.1, "b": 1.0E+2, "c": 9007199254740993, "d": 18446744073709551615, "e": -1.5})");
  EXPECT_EQ(kept.dump(),
            R"({"a":0.1,"b":100.0,"c":9007199254740993,"d":18446744073709551615,"e":-1.5})");
}

}  // namespace
}  // namespace nudge::api
