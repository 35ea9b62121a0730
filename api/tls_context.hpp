#pragma once
// HTTPS for nudge-api: the server's certificate and key ([api] tls_cert, tls_key), loaded once
// at start into the OpenSSL context every TLS connection is made from.

#include <openssl/ssl.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace nudge::api {

// Why the certificate or key could not be used; what() names the setting and the file, and
// OpenSSL's reason, never the file's contents.
class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TlsContext {
 public:
  // Loads the PEM certificate chain and private key; throws TlsError.
  TlsContext(const std::string& cert_file, const std::string& key_file);
  SSL_CTX* get() const { return ctx_.get(); }

 private:
  struct Free {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
  };
  std::unique_ptr<SSL_CTX, Free> ctx_;
};

}  // namespace nudge::api
