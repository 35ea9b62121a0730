#include "nudge/metrics.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <functional>

namespace nudge::metrics {
namespace {

constexpr std::size_t kCellsPerLine = 64 / sizeof(std::atomic<std::uint64_t>);

// Threads take shards in the order they first update a metric: the few busy threads of a
// program (claim loops, request threads) each get their own.
std::size_t shard() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return mine;
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    // Plain decimals where they stay short (le="0.0005", not "5e-04"), exponents beyond.
    const double magnitude = std::fabs(v);
    const bool fixed = v == 0 || (magnitude >= 1e-6 && magnitude < 1e15);
    char buf[64];
    const auto [end, ec] = fixed ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                                 : std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc() ? end : buf);
  }
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? end : buf);
}

// Escapes backslashes and line breaks, and double quotes when `quotes` (label values).
void append_escaped(std::string& out, std::string_view text, bool quotes) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

const char* type_name(Type type) {
  switch (type) {
    case Type::counter:
      return "counter";
    case Type::gauge:
      return "gauge";
    case Type::histogram:
      break;
  }
  return "histogram";
}

bool name_char(char c, bool first, bool colon) {
  const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return letter || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

Labels zip(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  Labels labels;
  labels.reserve(names.size() + 1);
  for (std::size_t i = 0; i < names.size(); ++i) labels.emplace_back(names[i], values[i]);
  return labels;
}

void write_histogram(TextWriter& out, const std::string& name, Labels labels, const Histogram& h) {
  const auto s = h.snapshot();
  labels.emplace_back("le", "");
  for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
    std::string le;
    append_number(le, i < h.bounds().size() ? h.bounds()[i] : INFINITY);
    labels.back().second = std::move(le);
    out.sample(name + "_bucket", labels, s.cumulative[i]);
  }
  labels.pop_back();
  out.sample(name + "_sum", labels, s.sum);
  out.sample(name + "_count", labels, s.cumulative.back());
}

void check_names(const std::string& name, Type type, const std::vector<std::string>& labels) {
  if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name " + name);
  if (type == Type::counter && !name.ends_with("_total"))
    throw std::invalid_argument("a counter's name must end in _total: " + name);
  for (const auto& label : labels) {
    if (!valid_label_name(label) || (type == Type::histogram && label == "le"))
      throw std::invalid_argument("invalid label name " + label + " of " + name);
  }
}

void check_bounds(const std::vector<double>& bounds) {
  if (std::adjacent_find(bounds.begin(), bounds.end(), std::greater_equal<>()) != bounds.end() ||
      std::any_of(bounds.begin(), bounds.end(), [](double b) { return !std::isfinite(b); }))
    throw std::invalid_argument("histogram bounds must be finite and strictly ascending");
}

}  // namespace

// ---- TextWriter ----

void TextWriter::family(std::string_view name, std::string_view help, Type type) {
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  append_escaped(text_, help, false);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type_name(type);
  text_ += '\n';
}

void TextWriter::labels(const Labels& labels) {
  if (labels.empty()) return;
  text_ += '{';
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) text_ += ',';
    text_ += labels[i].first;
    text_ += "=\"";
    append_escaped(text_, labels[i].second, true);
    text_ += '"';
  }
  text_ += '}';
}

void TextWriter::sample(std::string_view name, const Labels& l, double value) {
  text_ += name;
  labels(l);
  text_ += ' ';
  append_number(text_, value);
  text_ += '\n';
}

void TextWriter::sample(std::string_view name, const Labels& l, std::uint64_t value) {
  text_ += name;
  labels(l);
  text_ += ' ';
  append_number(text_, value);
  text_ += '\n';
}

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, true)) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, false)) return false;
  }
  return true;
}

// ---- Counter ----

void Counter::inc(std::uint64_t n) noexcept {
  slots_[shard()].n.fetch_add(n, std::memory_order_relaxed);
}

std::uint64_t Counter::value() const noexcept {
  std::uint64_t total = 0;
  for (const auto& slot : slots_) total += slot.n.load(std::memory_order_relaxed);
  return total;
}

// ---- Histogram ----

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  check_bounds(bounds_);
  const std::size_t cells = bounds_.size() + 2;  // buckets, +Inf, the sum
  stride_ = (cells + kCellsPerLine - 1) / kCellsPerLine * kCellsPerLine;
  // One spare cache line, so that the shards can start on a line boundary.
  const std::size_t total = stride_ * kShards + kCellsPerLine;
  storage_ = std::make_unique<std::atomic<std::uint64_t>[]>(total);
  auto address = reinterpret_cast<std::uintptr_t>(storage_.get());
  const std::size_t skip = (64 - address % 64) % 64 / sizeof(std::atomic<std::uint64_t>);
  cells_ = storage_.get() + skip;
}

void Histogram::observe(double v) noexcept {
  if (std::isnan(v)) return;
  const auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                               bounds_.begin());
  std::atomic<std::uint64_t>* const cells = cells_ + shard() * stride_;
  cells[bucket].fetch_add(1, std::memory_order_relaxed);
  // The sum, as the bits of a double; the shard is this thread's, so this rarely loops.
  auto& sum = cells[bounds_.size() + 1];
  std::uint64_t old = sum.load(std::memory_order_relaxed);
  while (!sum.compare_exchange_weak(old,
                                    std::bit_cast<std::uint64_t>(std::bit_cast<double>(old) + v),
                                    std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.assign(bounds_.size() + 1, 0);
  for (std::size_t shard = 0; shard < kShards; ++shard) {
    const std::atomic<std::uint64_t>* const cells = cells_ + shard * stride_;
    for (std::size_t i = 0; i <= bounds_.size(); ++i)
      s.cumulative[i] += cells[i].load(std::memory_order_relaxed);
    s.sum += std::bit_cast<double>(cells[bounds_.size() + 1].load(std::memory_order_relaxed));
  }
  for (std::size_t i = 1; i < s.cumulative.size(); ++i) s.cumulative[i] += s.cumulative[i - 1];
  return s;
}

// ---- Registry ----

void Registry::add(const std::string& name, std::function<void(TextWriter&)> write) {
  std::lock_guard lock(mutex_);
  if (std::find(names_.begin(), names_.end(), name) != names_.end())
    throw std::invalid_argument("metric registered twice: " + name);
  names_.push_back(name);
  writers_.push_back(std::move(write));
}

Family<Counter>& Registry::counter_family(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names) {
  check_names(name, Type::counter, label_names);
  auto family = std::make_shared<Family<Counter>>(std::move(label_names),
                                                  [] { return std::make_unique<Counter>(); });
  add(name, [name, help, f = family.get()](TextWriter& out) {
    out.family(name, help, Type::counter);
    f->each([&](const std::vector<std::string>& values, const Counter& c) {
      out.sample(name, zip(f->label_names(), values), c.value());
    });
  });
  std::lock_guard lock(mutex_);
  owned_.push_back(family);
  return *family;
}

Counter& Registry::counter(const std::string& name, const std::string& help) {
  return counter_family(name, help, {}).with(std::vector<std::string>{});
}

Gauge& Registry::gauge(const std::string& name, const std::string& help) {
  check_names(name, Type::gauge, {});
  auto gauge = std::make_shared<Gauge>();
  add(name, [name, help, g = gauge.get()](TextWriter& out) {
    out.family(name, help, Type::gauge);
    out.sample(name, {}, g->value());
  });
  std::lock_guard lock(mutex_);
  owned_.push_back(gauge);
  return *gauge;
}

Family<Histogram>& Registry::histogram_family(const std::string& name, const std::string& help,
                                              std::vector<double> bounds,
                                              std::vector<std::string> label_names) {
  check_names(name, Type::histogram, label_names);
  check_bounds(bounds);  // now, rather than at the first series
  auto family = std::make_shared<Family<Histogram>>(
      std::move(label_names), [bounds] { return std::make_unique<Histogram>(bounds); });
  add(name, [name, help, f = family.get()](TextWriter& out) {
    out.family(name, help, Type::histogram);
    f->each([&](const std::vector<std::string>& values, const Histogram& h) {
      write_histogram(out, name, zip(f->label_names(), values), h);
    });
  });
  std::lock_guard lock(mutex_);
  owned_.push_back(family);
  return *family;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               std::vector<double> bounds) {
  return histogram_family(name, help, std::move(bounds), {}).with(std::vector<std::string>{});
}

void Registry::counter_fn(const std::string& name, const std::string& help,
                          std::function<double()> read) {
  check_names(name, Type::counter, {});
  add(name, [name, help, read = std::move(read)](TextWriter& out) {
    out.family(name, help, Type::counter);
    out.sample(name, {}, read());
  });
}

void Registry::gauge_fn(const std::string& name, const std::string& help,
                        std::function<double()> read) {
  check_names(name, Type::gauge, {});
  add(name, [name, help, read = std::move(read)](TextWriter& out) {
    out.family(name, help, Type::gauge);
    out.sample(name, {}, read());
  });
}

void Registry::collector(std::function<void(TextWriter&)> collect) {
  std::lock_guard lock(mutex_);
  writers_.push_back(std::move(collect));
}

std::string Registry::render() const {
  TextWriter out;
  std::lock_guard lock(mutex_);
  for (const auto& write : writers_) write(out);
  return out.take();
}

}  // namespace nudge::metrics
