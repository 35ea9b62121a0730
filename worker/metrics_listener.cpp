#include "metrics_listener.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <string_view>
#include <utility>
#include <vector>

#include "nudge/database.hpp"
#include "nudge/log.hpp"

namespace nudge {
namespace {

// The due backlog is counted up to this: one index range per scrape, however large it grows.
constexpr int kBacklogCountCap = 10000;
// Requests served at once: a scraper keeping its connection open, and a probe or two.
constexpr std::size_t kThreads = 4;
constexpr const char* kText = "text/plain; charset=utf-8";

void reply(httplib::Response& res, const health::Answer& answer) {
  res.status = answer.status;
  res.set_content(answer.body, kText);
}

struct DatabaseFamily {
  std::string name;
  std::string help;
  std::vector<std::pair<metrics::Labels, double>> samples;
};

}  // namespace

MetricsListener::MetricsListener(const Config& config, metrics::Registry& registry,
                                 std::string application_name)
    : config_(config),
      registry_(registry),
      application_name_(std::move(application_name)),
      server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  // httplib's default adds SO_REUSEPORT, with which a second worker given the same port would
  // share it silently, each answering some scrapes: it must fail instead.
  server_->set_socket_options([](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    metrics::TextWriter database;
    write_database_gauges(database);
    res.set_content(registry_.render() + database.take(), metrics::kContentType);
  });
  server_->Get("/livez", [](const httplib::Request& req, httplib::Response& res) {
    reply(res, health::answer("livez", {{"ping", std::nullopt}}, req.has_param("verbose")));
  });
  server_->Get("/readyz", [this](const httplib::Request& req, httplib::Response& res) {
    reply(res, health::answer("readyz", readiness(), req.has_param("verbose")));
  });
}

MetricsListener::~MetricsListener() {
  stop();
}

bool MetricsListener::start() {
  if (!server_->bind_to_port(config_.worker.metrics_address, config_.worker.metrics_port))
    return false;
  serving_ = std::thread([this] { server_->listen_after_bind(); });
  return true;
}

void MetricsListener::stop() {
  if (!serving_.joinable()) return;
  // stop() only ends a server that has begun listening, which the thread does at once.
  for (int i = 0; i < 1000 && !server_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_->stop();
  serving_.join();
}

pqxx::connection* MetricsListener::connection() {
  if (conn_ && conn_->is_open()) return conn_.get();
  try {
    conn_ = open_connection(config_.database.url, application_name_);
    // A scrape or a probe must not hang on a stuck database.
    pqxx::nontransaction(*conn_).exec("SET statement_timeout = '5s'");
    return conn_.get();
  } catch (const std::exception& e) {
    conn_.reset();
    log::debug("metrics listener: database unreachable",
               {{"error", redact(e.what(), config_.database.url)}});
    return nullptr;
  }
}

// nudge.gauges answers one row per sample, grouped by name; rows the text format could not
// carry are left out.
void MetricsListener::write_database_gauges(metrics::TextWriter& out) {
  std::vector<DatabaseFamily> families;
  {
    std::lock_guard lock(mutex_);
    pqxx::connection* conn = connection();
    if (conn == nullptr) return;
    try {
      pqxx::nontransaction tx(*conn);
      for (const auto& row : tx.exec_params("SELECT name, help, label_name, label_value, value"
                                            " FROM nudge.gauges($1) ORDER BY name, label_value",
                                            kBacklogCountCap)) {
        const std::string name = row[0].c_str();
        if (!metrics::valid_metric_name(name) || row[4].is_null()) continue;
        metrics::Labels labels;
        if (!row[2].is_null()) {
          if (!metrics::valid_label_name(row[2].c_str())) continue;
          labels.emplace_back(row[2].c_str(), row[3].is_null() ? "" : row[3].c_str());
        }
        if (families.empty() || families.back().name != name)
          families.push_back({name, row[1].is_null() ? "" : row[1].c_str(), {}});
        families.back().samples.emplace_back(std::move(labels), row[4].as<double>());
      }
    } catch (const std::exception& e) {
      conn_.reset();
      log::warn("metrics listener: could not read the database's gauges",
                {{"error", redact(e.what(), config_.database.url)}});
      return;
    }
  }
  for (const auto& f : families) {
    out.family(f.name, f.help, metrics::Type::gauge);
    for (const auto& [labels, value] : f.samples) out.sample(f.name, labels, value);
  }
}

std::vector<health::CheckResult> MetricsListener::readiness() {
  std::lock_guard lock(mutex_);
  pqxx::connection* conn = connection();
  if (conn == nullptr) return health::database_unreachable("the database is unreachable");
  auto checks = health::check_database(*conn);
  if (checks.front().failure) conn_.reset();
  return checks;
}

}  // namespace nudge
