#include "support/webhook_receiver.hpp"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <cctype>
#include <stdexcept>
#include <utility>
#include <vector>

#include "support/listen_backlog.hpp"

namespace nudge::test {

class WebhookReceiver::Impl {
 public:
  explicit Impl(int port) {
    // Enough handler threads that a hanging path never blocks the others.
    server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    const auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      Script script;
      Responder responder;
      std::string location;
      std::vector<std::pair<std::string, std::string>> extra;
      int n = 0;
      ReceivedRequest r{req.method, req.path, req.body, {}, std::chrono::steady_clock::now()};
      for (const auto& [name, value] : req.headers) {
        std::string lower = name;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[lower] = value;
      }
      {
        std::lock_guard lock(mutex_);
        received_.push_back(r);
        n = ++count_[req.path];
        if (const auto it = scripts_.find(req.path); it != scripts_.end()) script = it->second;
        if (const auto it = responders_.find(req.path); it != responders_.end())
          responder = it->second;
        if (const auto it = redirects_.find(req.path); it != redirects_.end())
          location = it->second;
        if (const auto it = headers_.find(req.path); it != headers_.end()) extra = it->second;
      }
      res.status = script ? script(n) : 200;
      for (const auto& [name, value] : extra) res.set_header(name, value);
      if (!location.empty()) {
        res.status = 307;
        res.set_header("Location", location);
      }
      res.set_content(responder ? responder(r) : res.status < 300 ? "ok" : "not now", "text/plain");
    };
    server_.Post(R"(/.*)", handle);
    server_.Put(R"(/.*)", handle);
    server_.Patch(R"(/.*)", handle);
    server_.Get(R"(/.*)", handle);
    server_.Delete(R"(/.*)", handle);
    port_ = bind_to_port_with_backlog(server_, "127.0.0.1", port);
    if (port_ <= 0) throw std::runtime_error("webhook receiver could not bind");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the server runs would be lost, and the destructor would wait forever.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Impl() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<ReceivedRequest> received_;
  std::map<std::string, int> count_;
  std::map<std::string, Script> scripts_;
  std::map<std::string, Responder> responders_;
  std::map<std::string, std::string> redirects_;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> headers_;
  std::atomic<bool> stopping_{false};
};

WebhookReceiver::WebhookReceiver(int port) : impl_(std::make_unique<Impl>(port)) {}
WebhookReceiver::~WebhookReceiver() = default;

void WebhookReceiver::on(const std::string& path, Script script) {
  std::lock_guard lock(impl_->mutex_);
  impl_->scripts_[path] = std::move(script);
}

void WebhookReceiver::respond(const std::string& path, Responder responder) {
  std::lock_guard lock(impl_->mutex_);
  impl_->responders_[path] = std::move(responder);
}

void WebhookReceiver::header(const std::string& path, const std::string& name,
                             const std::string& value) {
  std::lock_guard lock(impl_->mutex_);
  impl_->headers_[path].emplace_back(name, value);
}

void WebhookReceiver::redirect(const std::string& path, const std::string& location) {
  std::lock_guard lock(impl_->mutex_);
  impl_->redirects_[path] = location;
}

std::string WebhookReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(impl_->port_) + path;
}

std::vector<ReceivedRequest> WebhookReceiver::requests() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->received_;
}

std::vector<ReceivedRequest> WebhookReceiver::requests_to(const std::string& path) const {
  std::vector<ReceivedRequest> out;
  for (auto& r : requests())
    if (r.path == path) out.push_back(std::move(r));
  return out;
}

bool WebhookReceiver::stopping() const {
  return impl_->stopping_;
}

std::string hmac_sha256_hex(const std::string& key, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &size);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0x0f];
  }
  return out;
}

bool nudge_signature_verifies(const std::string& header, const std::string& secret,
                              const std::string& body) {
  const auto comma = header.find(",v1=");
  if (header.rfind("t=", 0) != 0 || comma == std::string::npos) return false;
  const std::string t = header.substr(2, comma - 2);
  return header.substr(comma + 4) == hmac_sha256_hex(secret, t + "." + body);
}

}  // namespace nudge::test
