#include "serve/tls.h"

#include <gnutls/x509.h>

#include <fstream>
#include <iterator>
#include <memory>

#include <fmt/core.h>

namespace vcpumap::serve {
namespace {

Result<std::string> read_pem(const std::filesystem::path& file, std::string_view key) {
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return make_error(ExitCode::bad_input, "TLS: can't read {} {}", key, file.string());
  }
  if (text.empty()) {
    return make_error(ExitCode::bad_input, "TLS: can't read {} {}: missing or empty", key,
                      file.string());
  }
  return text;
}

gnutls_datum_t datum(const std::string& text) {
  // GnuTLS takes PEM as an unsigned buffer it does not change.
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(text.data())),
          static_cast<unsigned>(text.size())};
}

// The GnuTLS name of a TLS wire version, or nullptr for one it does not name.
const char* version_name(int version) {
  switch (version) {
    case 0x0301:
      return "VERS-TLS1.0";
    case 0x0302:
      return "VERS-TLS1.1";
    case 0x0303:
      return "VERS-TLS1.2";
    case 0x0304:
      return "VERS-TLS1.3";
    default:
      return nullptr;
  }
}

}  // namespace

std::string tls_priorities(int min_version, int max_version) {
  const int low = min_version != 0 ? min_version : kTls12;
  const int high = max_version != 0 ? max_version : kTls13;
  std::string text = "NORMAL:-VERS-ALL";
  for (int version = high; version >= low; --version) {
    if (const char* name = version_name(version)) text += fmt::format(":+{}", name);
  }
  // exporter-toolkit turns compression and renegotiation off; GnuTLS has neither by default.
  return text;
}

Result<TlsMaterial> load_tls_material(const TlsConfig& tls) {
  TlsMaterial material;
  auto cert = read_pem(tls.cert_file, "cert_file");
  if (!cert) return cert.error();
  auto key = read_pem(tls.key_file, "key_file");
  if (!key) return key.error();
  material.cert_pem = std::move(*cert);
  material.key_pem = std::move(*key);
  if (tls.client_auth != ClientAuth::none) {
    auto ca = read_pem(tls.client_ca_file, "client_ca_file");
    if (!ca) return ca.error();
    material.client_ca_pem = std::move(*ca);
  }
  material.priorities = tls_priorities(tls.min_version, tls.max_version);

  gnutls_certificate_credentials_t credentials = nullptr;
  if (gnutls_certificate_allocate_credentials(&credentials) != GNUTLS_E_SUCCESS) {
    return Error{"TLS: GnuTLS can't allocate credentials"};
  }
  const std::unique_ptr<gnutls_certificate_credentials_st,
                        decltype(&gnutls_certificate_free_credentials)>
      owner(credentials, gnutls_certificate_free_credentials);
  const gnutls_datum_t cert_datum = datum(material.cert_pem), key_datum = datum(material.key_pem);
  if (const int rc = gnutls_certificate_set_x509_key_mem(credentials, &cert_datum, &key_datum,
                                                         GNUTLS_X509_FMT_PEM);
      rc < 0) {
    return make_error(ExitCode::bad_input, "TLS: can't use cert_file {} with key_file {}: {}",
                      tls.cert_file.string(), tls.key_file.string(), gnutls_strerror(rc));
  }
  if (!material.client_ca_pem.empty()) {
    const gnutls_datum_t ca_datum = datum(material.client_ca_pem);
    if (const int rc =
            gnutls_certificate_set_x509_trust_mem(credentials, &ca_datum, GNUTLS_X509_FMT_PEM);
        rc <= 0) {
      return make_error(ExitCode::bad_input, "TLS: can't load client_ca_file {}: {}",
                        tls.client_ca_file.string(),
                        rc < 0 ? gnutls_strerror(rc) : "no certificate in it");
    }
  }
  const char* where = nullptr;
  gnutls_priority_t priority = nullptr;
  if (const int rc = gnutls_priority_init(&priority, material.priorities.c_str(), &where); rc < 0) {
    return make_error(ExitCode::bad_input,
                      "TLS: min_version..max_version give no usable "
                      "protocol ({}: {})",
                      material.priorities, gnutls_strerror(rc));
  }
  gnutls_priority_deinit(priority);
  return material;
}

std::string check_client_certificate(gnutls_session_t session, ClientAuth mode) {
  if (mode == ClientAuth::none) return {};
  unsigned count = 0;
  const bool given =
      session != nullptr && gnutls_certificate_get_peers(session, &count) != nullptr && count > 0;
  if (!given) {
    return mode == ClientAuth::require_and_verify ? "a client certificate is required" : "";
  }
  unsigned status = 0;
  if (gnutls_certificate_verify_peers2(session, &status) < 0 || status != 0) {
    return "the client certificate is not signed by client_ca_file, or has expired";
  }
  return {};
}

}  // namespace vcpumap::serve
