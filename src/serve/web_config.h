// The `--web.config.file` of Prometheus' exporter-toolkit: TLS and basic auth for the exporter,
// in the same YAML, so one file serves node_exporter and vcpumap alike.
//
//   tls_server_config:
//     cert_file: server.crt            # paths are relative to the config file
//     key_file: server.key
//     client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default),
//     client_ca_file: ca.crt                          #   VerifyClientCertIfGiven
//     min_version: TLS12               # TLS10..TLS13; max_version likewise
//   basic_auth_users:
//     prometheus: $2b$12$...           # bcrypt hashes, as htpasswd -B makes them
//
// Keys the toolkit knows but vcpumap does not honour (cipher_suites, http_server_config...) are
// refused with a message rather than silently ignored: a security setting must not be dropped.
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace vcpumap::serve {

enum class ClientAuth { none, verify_if_given, require_and_verify };

// TLS protocol versions as the wire numbers them (TLS 1.0 is 3.1).
inline constexpr int kTls10 = 0x0301, kTls11 = 0x0302, kTls12 = 0x0303, kTls13 = 0x0304;

struct TlsConfig {
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::filesystem::path client_ca_file;
  ClientAuth client_auth = ClientAuth::none;
  int min_version = 0;  // a protocol version (kTls12...); 0: TLS 1.2
  int max_version = 0;  // 0: TLS 1.3
};

struct WebConfig {
  std::optional<TlsConfig> tls;
  std::map<std::string, std::string> basic_auth_users;  // user name -> bcrypt hash
};

// Parses the YAML text of a web config; relative paths are taken from `base_dir`.
Result<WebConfig> parse_web_config(std::string_view yaml, const std::filesystem::path& base_dir);
// Reads and parses a web config file.
Result<WebConfig> load_web_config(const std::filesystem::path& file);

// Checks HTTP basic-auth credentials against bcrypt hashes. bcrypt is slow by design (tens of
// ms), so a successful check is remembered by a SHA-256 of the password, as exporter-toolkit does.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

  // True when the Authorization header's value names a user and the right password.
  bool check(std::string_view authorization_header);
  // True when at least one user is configured (else every request is let in).
  bool enabled() const { return !users_.empty(); }

 private:
  std::map<std::string, std::string> users_;
  std::mutex mutex_;
  std::map<std::string, std::string> verified_;  // user -> SHA-256 of the password that passed
};

// The bytes a base64 text stands for; nullopt when it is not base64.
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace vcpumap::serve
