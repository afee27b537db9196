// TLS for the exporter through GnuTLS, the library libmicrohttpd is built with: what the web
// config's tls_server_config turns into, and the client-certificate check exporter-toolkit's
// client_auth_type asks for.
#pragma once

#include <string>
#include <string_view>

#include <gnutls/gnutls.h>

#include "serve/web_config.h"
#include "util/result.h"

namespace vcpumap::serve {

// The PEM texts libmicrohttpd is given, read from the web config's files and checked by GnuTLS
// so a bad file fails at start with a message naming it.
struct TlsMaterial {
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;  // empty without client_auth_type
  std::string priorities;     // a GnuTLS priority string for the min..max versions
};

// Reads and checks the certificate, key and client CA files; an error names the file.
Result<TlsMaterial> load_tls_material(const TlsConfig& tls);

// The GnuTLS priority string for TLS versions min..max (wire versions 0x0301-0x0304; 0: the
// defaults TLS 1.2 and the newest).
std::string tls_priorities(int min_version, int max_version);

// Empty when the session's client certificate satisfies `mode`, else why it does not.
std::string check_client_certificate(gnutls_session_t session, ClientAuth mode);

}  // namespace vcpumap::serve
