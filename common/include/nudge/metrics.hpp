#pragma once
// Metrics in Prometheus' text exposition format 0.0.4: counters, gauges and histograms with fixed
// buckets, each family with a fixed list of label names. Updates are lock-free: counters and
// histograms are sharded over cache lines, so threads updating the same series do not contend.
// Looking up a labelled series takes a lock: hot paths look theirs up once and keep the
// reference (a series lives as long as its registry).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nudge::metrics {

enum class Type { counter, gauge, histogram };

// Label name and value pairs of one sample, in the family's label order.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Writes the text format: a family's # HELP and # TYPE lines, then its samples. Label values and
// help texts are escaped here; names must be valid (see valid_metric_name).
class TextWriter {
 public:
  void family(std::string_view name, std::string_view help, Type type);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, const Labels& labels, std::uint64_t value);
  std::string take() { return std::move(text_); }

 private:
  void labels(const Labels& labels);
  std::string text_;
};

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved)
bool valid_label_name(std::string_view name);

// Shards of a counter or histogram: each thread updates its own (threads beyond it share).
inline constexpr std::size_t kShards = 8;

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept;
  std::uint64_t value() const noexcept;

 private:
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> n{0};
  };
  Slot slots_[kShards];
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double v) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds (le), ascending; +Inf is added.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void observe(double v) noexcept;

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (which is the count)
    double sum = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::size_t stride_;  // atomics per shard (buckets, +Inf, sum bits), whole cache lines
  std::unique_ptr<std::atomic<std::uint64_t>[]> storage_;
  std::atomic<std::uint64_t>* cells_;  // storage_, aligned to a cache line
};

// A family's series by label values. A series is made on first use and never removed.
template <typename Metric>
class Family {
 public:
  using Make = std::function<std::unique_ptr<Metric>()>;
  Family(std::vector<std::string> label_names, Make make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}

  // The series with these label values (one per label name, in order); throws
  // std::invalid_argument when their number is wrong.
  Metric& with(std::initializer_list<std::string_view> values);
  Metric& with(const std::vector<std::string>& values);

  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls f(label values, series) for every series, in label order.
  template <typename F>
  void each(F&& f) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, metric] : series_) f(values, *metric);
  }

 private:
  std::vector<std::string> label_names_;
  Make make_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> series_;
};

// Every metric of a program, rendered together for GET /metrics.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Families updated by the program. Names are checked (std::invalid_argument), and a counter's
  // must end in _total. Register each name once.
  Counter& counter(const std::string& name, const std::string& help);
  Family<Counter>& counter_family(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names);
  Gauge& gauge(const std::string& name, const std::string& help);
  Histogram& histogram(const std::string& name, const std::string& help,
                       std::vector<double> bounds);
  Family<Histogram>& histogram_family(const std::string& name, const std::string& help,
                                      std::vector<double> bounds,
                                      std::vector<std::string> label_names);

  // A counter or gauge read when the metrics are rendered.
  void counter_fn(const std::string& name, const std::string& help, std::function<double()> read);
  void gauge_fn(const std::string& name, const std::string& help, std::function<double()> read);
  // Families written when the metrics are rendered (process figures, database gauges); the
  // collector writes whole families and must not repeat a name.
  void collector(std::function<void(TextWriter&)> collect);

  // The text format of every family, in the order registered.
  std::string render() const;

 private:
  void add(const std::string& name, std::function<void(TextWriter&)> write);

  mutable std::mutex mutex_;
  std::vector<std::string> names_;
  std::vector<std::function<void(TextWriter&)>> writers_;
  std::vector<std::shared_ptr<void>> owned_;  // the families the writers refer to
};

// The media type of the text format.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

// ---- Family ----

template <typename Metric>
Metric& Family<Metric>::with(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size())
    throw std::invalid_argument("wrong number of label values");
  std::lock_guard lock(mutex_);
  auto& slot = series_[values];
  if (!slot) slot = make_();
  return *slot;
}

template <typename Metric>
Metric& Family<Metric>::with(std::initializer_list<std::string_view> values) {
  return with(std::vector<std::string>(values.begin(), values.end()));
}

}  // namespace nudge::metrics
