#include "tls_context.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace nudge::api {
namespace {

constexpr const char* kCertificate = "cannot load a PEM certificate";
constexpr const char* kKey = "cannot load a PEM private key";

// OpenSSL's reason for the last failure ("no start line", "No such file or directory"), and the
// error queue emptied.
std::string openssl_reason() {
  std::string reason;
  while (const unsigned long code = ERR_get_error()) {
    const char* text = ERR_reason_error_string(code);
    if (text != nullptr && reason.empty()) reason = text;
  }
  return reason.empty() ? "unknown error" : reason;
}

[[noreturn]] void fail(const std::string& setting, const std::string& file, const std::string& what,
                       const std::string& reason) {
  throw TlsError(setting + ": " + what + " from " + file + " (" + reason + ")");
}

[[noreturn]] void fail(const std::string& setting, const std::string& file,
                       const std::string& what) {
  fail(setting, file, what, openssl_reason());
}

// OpenSSL's reason for a file it cannot open is only "system lib": the system's own is asked
// first ("No such file or directory", "Permission denied", "Is a directory").
void check_readable(const std::string& setting, const std::string& file, const std::string& what) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(setting, file, what, std::generic_category().message(errno));
  struct stat status {};
  const bool directory = ::fstat(fd, &status) == 0 && S_ISDIR(status.st_mode);
  ::close(fd);
  if (directory) fail(setting, file, what, std::generic_category().message(EISDIR));
}

}  // namespace

TlsContext::TlsContext(const std::string& cert_file, const std::string& key_file) {
  if (cert_file.empty() != key_file.empty()) {
    throw TlsError(cert_file.empty() ? "api.tls_cert: must be set with api.tls_key"
                                     : "api.tls_key: must be set with api.tls_cert");
  }
  ERR_clear_error();
  ctx_.reset(SSL_CTX_new(TLS_server_method()));
  if (!ctx_)
    throw TlsError("api.tls_cert: OpenSSL could not create a context (" + openssl_reason() + ")");
  SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
  // TLS 1.2 with forward secrecy and AEAD only (Mozilla's "intermediate" list): OpenSSL's
  // default also offers RSA key exchange and CBC with SHA-1. TLS 1.3's suites are all such.
  SSL_CTX_set_cipher_list(ctx_.get(),
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                          "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"
                          "DHE-RSA-CHACHA20-POLY1305");
  // A client that goes without close_notify has ended its input, like a plain one.
  SSL_CTX_set_options(ctx_.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  // An encrypted key fails to load rather than waiting for a passphrase on the terminal.
  SSL_CTX_set_default_passwd_cb(ctx_.get(), [](char*, int, int, void*) { return 0; });
  // A write interrupted by a full socket is retried from wherever the answer's buffer then is.
  SSL_CTX_set_mode(ctx_.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                   SSL_MODE_RELEASE_BUFFERS);
  check_readable("api.tls_cert", cert_file, kCertificate);
  check_readable("api.tls_key", key_file, kKey);
  if (SSL_CTX_use_certificate_chain_file(ctx_.get(), cert_file.c_str()) != 1)
    fail("api.tls_cert", cert_file, kCertificate);
  if (SSL_CTX_use_PrivateKey_file(ctx_.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    fail("api.tls_key", key_file, kKey);
  if (SSL_CTX_check_private_key(ctx_.get()) != 1)
    fail("api.tls_key", key_file, "the key does not match the certificate of api.tls_cert");
}

}  // namespace nudge::api
