// The health answers' form, as Kubernetes' own /livez and /readyz give it: "ok" when all passes,
// each check listed with ?verbose or when one fails, 200 or 503.

#include "nudge/health.hpp"

#include <gtest/gtest.h>

namespace nudge::health {
namespace {

struct HealthCase {
  const char* label;
  std::vector<CheckResult> checks;
  bool verbose;
  int status;
  std::string body;
};

class HealthAnswer : public ::testing::TestWithParam<HealthCase> {};

TEST_P(HealthAnswer, HasTheKubernetesForm) {
  const Answer a = answer("readyz", GetParam().checks, GetParam().verbose);
  EXPECT_EQ(a.status, GetParam().status);
  EXPECT_EQ(a.body, GetParam().body);
}

const std::vector<CheckResult> kPassing{{"database", std::nullopt}, {"schema", std::nullopt}};
const std::vector<CheckResult> kFailing{{"database", std::nullopt},
                                        {"schema", "migration 0007_metrics is not applied"}};

INSTANTIATE_TEST_SUITE_P(
    Forms, HealthAnswer,
    ::testing::Values(
        HealthCase{"PassingIsOk", kPassing, false, 200, "ok\n"},
        HealthCase{"PassingVerboseListsEachCheck", kPassing, true, 200,
                   "[+]database ok\n[+]schema ok\nreadyz check passed\n"},
        HealthCase{"FailingListsEachCheckWithTheReason", kFailing, false, 503,
                   "[+]database ok\n[-]schema failed: migration 0007_metrics is not applied\n"
                   "readyz check failed\n"},
        HealthCase{"FailingVerboseIsTheSame", kFailing, true, 503,
                   "[+]database ok\n[-]schema failed: migration 0007_metrics is not applied\n"
                   "readyz check failed\n"},
        HealthCase{"NoChecksIsOk", {}, false, 200, "ok\n"}),
    [](const auto& info) { return std::string(info.param.label); });

TEST(DatabaseUnreachable, FailsEveryCheckSayingWhy) {
  const auto a = answer("readyz", database_unreachable("the database is unreachable"), false);
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body,
            "[-]database failed: the database is unreachable\n"
            "[-]schema failed: not checked: the database is unreachable\n"
            "[-]grants failed: not checked: the database is unreachable\nreadyz check failed\n");
}

}  // namespace
}  // namespace nudge::health
