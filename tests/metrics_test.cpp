// The metrics exposition: counters, gauges and histograms in Prometheus' text format 0.0.4,
// checked line by line and by promtool; names Prometheus would refuse are refused at
// registration; updates from many threads all count.

#include "nudge/metrics.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "nudge/process_metrics.hpp"
#include "support/prometheus_text.hpp"

namespace nudge::metrics {
namespace {

using test::promtool_problems;
using test::sample_value;

TEST(Exposition, EveryKindIsWrittenWithHelpTypeAndSamples) {
  Registry r;
  r.counter("jobs_total", "Jobs done.").inc(3);
  r.counter_family("tries_total", "Tries by outcome.", {"outcome"}).with({"failed"}).inc();
  r.gauge("queue_depth", "Jobs waiting.").set(7.5);
  r.gauge_fn("pool_size", "Connections.", [] { return 16.0; });
  auto& h = r.histogram("wait_seconds", "Waits.", {0.0005, 0.1, 1});
  h.observe(0.00048828125);  // binary fractions: the sum is exact
  h.observe(0.0625);
  h.observe(4);
  EXPECT_EQ(r.render(),
            "# HELP jobs_total Jobs done.\n"
            "# TYPE jobs_total counter\n"
            "jobs_total 3\n"
            "# HELP tries_total Tries by outcome.\n"
            "# TYPE tries_total counter\n"
            "tries_total{outcome=\"failed\"} 1\n"
            "# HELP queue_depth Jobs waiting.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth 7.5\n"
            "# HELP pool_size Connections.\n"
            "# TYPE pool_size gauge\n"
            "pool_size 16\n"
            "# HELP wait_seconds Waits.\n"
            "# TYPE wait_seconds histogram\n"
            "wait_seconds_bucket{le=\"0.0005\"} 1\n"
            "wait_seconds_bucket{le=\"0.1\"} 2\n"
            "wait_seconds_bucket{le=\"1\"} 2\n"
            "wait_seconds_bucket{le=\"+Inf\"} 3\n"
            "wait_seconds_sum 4.06298828125\n"
            "wait_seconds_count 3\n");
}

TEST(Exposition, LabelledSeriesAreWrittenInLabelOrderWithTheirLabelsFirstAndLeLast) {
  Registry r;
  auto& f = r.histogram_family("took_seconds", "Took.", {1}, {"method", "route"});
  f.with({"POST", "/v1/reminders"}).observe(2);
  f.with({"GET", "/v1/reminders/{id}"}).observe(0.5);
  const std::string text = r.render();
  EXPECT_EQ(
      sample_value(text, R"(took_seconds_bucket{method="GET",route="/v1/reminders/{id}",le="1"})"),
      1);
  EXPECT_EQ(
      sample_value(text, R"(took_seconds_bucket{method="POST",route="/v1/reminders",le="1"})"), 0);
  EXPECT_EQ(sample_value(text, R"(took_seconds_count{method="POST",route="/v1/reminders"})"), 1);
  EXPECT_LT(text.find("method=\"GET\""), text.find("method=\"POST\""));
}

TEST(Exposition, LabelValuesAndHelpAreEscaped) {
  Registry r;
  r.counter_family("odd_total", "Help with a \\ and a\nline break.", {"v"})
      .with({"a \"quoted\" \\ value\nwith a line break"})
      .inc();
  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP odd_total Help with a \\\\ and a\\nline break.\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("odd_total{v=\"a \\\"quoted\\\" \\\\ value\\nwith a line break\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(promtool_problems(text), "");
}

TEST(Exposition, ALabelledFamilyWithoutSeriesStillPassesPromtool) {
  Registry r;
  r.counter_family("nothing_yet_total", "Nothing has happened.", {"kind"});
  EXPECT_EQ(promtool_problems(r.render()), "");
}

TEST(Exposition, ProcessFiguresAreThereAndPassPromtool) {
  Registry r;
  add_process_metrics(r);
  const std::string text = r.render();
  EXPECT_GT(sample_value(text, "process_resident_memory_bytes").value_or(0), 1e6);
  EXPECT_GT(sample_value(text, "process_open_fds").value_or(0), 2);
  EXPECT_GT(sample_value(text, "process_start_time_seconds").value_or(0), 1.7e9);
  EXPECT_TRUE(sample_value(text, "process_cpu_seconds_total"));
  EXPECT_EQ(promtool_problems(text), "");
}

TEST(Exposition, AWholeRegistryPassesPromtool) {
  Registry r;
  r.counter("a_total", "A.").inc();
  r.counter_family("b_total", "B.", {"channel", "outcome"}).with({"log", "delivered"}).inc(2);
  r.gauge("c", "C.").set(-1);
  r.histogram_family("d_seconds", "D.", {0.001, 0.01, 0.1}, {"channel"})
      .with({"webhook"})
      .observe(0.02);
  r.counter_fn("e_total", "E.", [] { return 4.0; });
  add_process_metrics(r);
  EXPECT_EQ(promtool_problems(r.render()), "");
}

TEST(Histogram, AnObservationOnABoundCountsInThatBucket) {
  Histogram h({1, 2});
  h.observe(1);
  h.observe(2);
  h.observe(2.0001);
  const auto s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(s.sum, 5.0001);
}

TEST(Histogram, NotANumberIsNotObserved) {
  Histogram h({1});
  h.observe(std::nan(""));
  EXPECT_EQ(h.snapshot().cumulative.back(), 0u);
  EXPECT_EQ(h.snapshot().sum, 0);
}

TEST(Histogram, BoundsMustBeFiniteAndStrictlyAscending) {
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, INFINITY}), std::invalid_argument);
  EXPECT_NO_THROW(Histogram({}));
}

TEST(Concurrency, UpdatesFromManyThreadsAllCount) {
  Registry r;
  auto& c = r.counter("hits_total", "Hits.");
  auto& h = r.histogram("sizes", "Sizes.", {10});
  constexpr int kThreads = 12;  // more than the shards: some threads share one
  constexpr int kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        c.inc();
        h.observe(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), static_cast<std::uint64_t>(kThreads) * kEach);
  const auto s = h.snapshot();
  EXPECT_EQ(s.cumulative.back(), static_cast<std::uint64_t>(kThreads) * kEach);
  EXPECT_DOUBLE_EQ(s.sum, static_cast<double>(kThreads) * kEach);
}

struct BadName {
  const char* label;
  void (*register_it)(Registry&);
};

class Registration : public ::testing::TestWithParam<BadName> {};

TEST_P(Registration, IsRefused) {
  Registry r;
  EXPECT_THROW(GetParam().register_it(r), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(
    NamesPrometheusWouldRefuse, Registration,
    ::testing::Values(
        BadName{"CounterWithoutTotal", [](Registry& r) { r.counter("jobs", "x"); }},
        BadName{"NameStartingWithADigit", [](Registry& r) { r.gauge("1jobs", "x"); }},
        BadName{"NameWithADash", [](Registry& r) { r.gauge("queue-depth", "x"); }},
        BadName{"EmptyName", [](Registry& r) { r.gauge("", "x"); }},
        BadName{"LabelWithAColon", [](Registry& r) { r.counter_family("a_total", "x", {"a:b"}); }},
        BadName{"ReservedLabel", [](Registry& r) { r.counter_family("a_total", "x", {"__name"}); }},
        BadName{"HistogramLabelledLe",
                [](Registry& r) { r.histogram_family("a_seconds", "x", {1}, {"le"}); }},
        BadName{"UnorderedBuckets",
                [](Registry& r) {
                  r.histogram("a_seconds", "x", {2, 1});
                }},
        BadName{"SameNameTwice",
                [](Registry& r) {
                  r.gauge("a", "x");
                  r.gauge_fn("a", "x", [] { return 1.0; });
                }},
        BadName{"WrongNumberOfLabelValues",
                [](Registry& r) {
                  r.counter_family("a_total", "x", {"channel", "outcome"}).with({"log"});
                }}),
    [](const auto& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace nudge::metrics
