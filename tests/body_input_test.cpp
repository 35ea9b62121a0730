// The reading of request bodies and times before anything reaches the database
// (api/input.hpp): how deep a body may nest, and which RFC 3339 offsets are taken.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "input.hpp"

namespace nudge::api {
namespace {

// {"a": [[...[]...]]} with the body and its arrays `depth` levels deep.
std::string nested_arrays(std::size_t depth) {
  return "{\"a\":" + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}";
}

// The path of the first array too deep in nested_arrays: a, then [0] for each array above it.
std::string too_deep_path() {
  std::string path = "a";
  for (std::size_t level = 3; level <= kMaxJsonDepth + 1; ++level) path += "[0]";
  return path;
}

TEST(BodyDepth, ABodyNestedToTheLimitIsRead) {
  const nlohmann::json body = parse_object(nested_arrays(kMaxJsonDepth));
  const nlohmann::json* v = &body["a"];
  std::size_t depth = 2;
  while (!v->empty()) {
    v = &(*v)[0];
    ++depth;
  }
  EXPECT_EQ(depth, kMaxJsonDepth);
}

TEST(BodyDepth, ABodyNestedDeeperIsA400NamingThePathAndTheLimit) {
  // 100,000 levels overflowed nudge-api's stack when the tree was walked.
  for (const std::size_t depth : {kMaxJsonDepth + 1, std::size_t{100000}}) {
    SCOPED_TRACE(depth);
    try {
      parse_object(nested_arrays(depth));
      ADD_FAILURE() << "read";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_EQ(e.code(), "invalid_value");
      EXPECT_EQ(e.field(), too_deep_path());
      EXPECT_NE(std::string(e.what()).find("at most 64 levels"), std::string::npos) << e.what();
    }
  }
}

TEST(BodyDepth, ObjectsCountAsArraysDo) {
  std::string body;
  for (std::size_t level = 0; level < kMaxJsonDepth; ++level) body += "{\"k\":";
  body += "1" + std::string(kMaxJsonDepth, '}');
  EXPECT_NO_THROW(parse_object(body));
  try {
    parse_object("{\"k\":" + body + "}");
    ADD_FAILURE() << "read";
  } catch (const ApiError& e) {
    std::string path = "k";
    for (std::size_t level = 2; level < kMaxJsonDepth; ++level) path += ".k";
    EXPECT_EQ(e.field(), path + ".k");
  }
}

TEST(Rfc3339, OffsetsBeyondWhatPostgresqlTakesAreRefused) {
  const struct {
    std::string time;
    bool taken;
  } cases[] = {
      {"2030-01-01T00:00:00Z", true},       {"2030-01-01T00:00:00+15:59", true},
      {"2030-01-01T00:00:00-15:59", true},  {"2030-01-01T00:00:00.5+14:00", true},
      {"2030-01-01T00:00:00+16:00", false}, {"2030-01-01T00:00:00-16:00", false},
      {"2030-01-01T00:00:00+20:00", false}, {"2030-01-01T00:00:00+23:59", false},
      {"2030-01-01T00:00:00+05:60", false}, {"2030-01-01T00:00:00+25:00", false},
  };
  for (const auto& c : cases) EXPECT_EQ(is_rfc3339(c.time), c.taken) << c.time;
}

// A leap second is RFC 3339 (explore20a); PostgreSQL reads it as the next minute's 00 and
// refuses a fraction past it.
TEST(Rfc3339, ALeapSecondIsTakenWithoutAFractionPastIt) {
  for (const std::string time : {"2016-12-31T23:59:60Z", "2016-12-31T23:59:60.000Z",
                                 "2017-01-01T00:59:60+01:00", "2015-06-30T18:59:60-05:00"})
    EXPECT_TRUE(is_rfc3339(time)) << time;
  for (const std::string time : {"2016-12-31T23:59:60.5Z", "2016-12-31T23:58:60Z",
                                 "2016-12-31T23:59:61Z", "2016-12-31T23:59:60.0001Z"})
    EXPECT_FALSE(is_rfc3339(time)) << time;
}

}  // namespace
}  // namespace nudge::api
