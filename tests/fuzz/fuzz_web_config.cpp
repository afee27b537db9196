// The exporter's --web.config.file, exporter-toolkit's YAML (serve::parse_web_config).
#include <fmt/format.h>

#include "fuzz.h"
#include "serve/web_config.h"

using namespace vcpumap;

namespace {

// `text` as a YAML double-quoted scalar. The text came out of YAML, so it is UTF-8 without raw
// control bytes; what YAML would fold or normalise (line breaks, NEL, LS, PS, BOM) is escaped.
std::string yaml_quoted(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto rest = text.substr(i);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else if (byte < 0x20 || byte == 0x7f) {
      out += fmt::format("\\x{:02x}", byte);
    } else if (rest.starts_with("\xc2\x85")) {
      out += "\\N", ++i;
    } else if (byte == 0xc2 && rest.size() > 1 && static_cast<unsigned char>(rest[1]) < 0xa0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(rest[1])), ++i;  // C1 controls
    } else if (rest.starts_with("\xe2\x80\xa8")) {
      out += "\\L", i += 2;
    } else if (rest.starts_with("\xe2\x80\xa9")) {
      out += "\\P", i += 2;
    } else if (rest.starts_with("\xef\xbb\xbf")) {
      out += "\\uFEFF", i += 2;
    } else {
      out += static_cast<char>(byte);
    }
  }
  return out + "\"";
}

std::string_view version_name(int version) {
  switch (version) {
    case serve::kTls10:
      return "TLS10";
    case serve::kTls11:
      return "TLS11";
    case serve::kTls12:
      return "TLS12";
    case serve::kTls13:
      return "TLS13";
  }
  return "";
}

bool same(const serve::WebConfig& a, const serve::WebConfig& b) {
  if (a.basic_auth_users != b.basic_auth_users || a.tls.has_value() != b.tls.has_value()) {
    return false;
  }
  if (!a.tls) return true;
  return a.tls->cert_file == b.tls->cert_file && a.tls->key_file == b.tls->key_file &&
         a.tls->client_ca_file == b.tls->client_ca_file &&
         a.tls->client_auth == b.tls->client_auth && a.tls->min_version == b.tls->min_version &&
         a.tls->max_version == b.tls->max_version;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto config = serve::parse_web_config(text, "/etc/vcpumap");
  if (!config) return 0;
  // Bounds: what the server is handed is complete: both TLS files, absolute paths (relative
  // ones are the config file's folder's), a CA when clients are checked, bcrypt hashes only.
  std::string yaml;
  if (const auto& tls = config->tls) {
    FUZZ_CHECK(tls->cert_file.has_filename() && tls->key_file.has_filename());
    FUZZ_CHECK(tls->cert_file.is_absolute() && tls->key_file.is_absolute());
    FUZZ_CHECK(tls->client_auth == serve::ClientAuth::none || !tls->client_ca_file.empty());
    yaml += fmt::format("tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                        yaml_quoted(tls->cert_file.native()), yaml_quoted(tls->key_file.native()));
    if (!tls->client_ca_file.empty()) {
      FUZZ_CHECK(tls->client_ca_file.has_filename());
      yaml += fmt::format("  client_ca_file: {}\n", yaml_quoted(tls->client_ca_file.native()));
    }
    constexpr std::string_view kAuth[] = {"NoClientCert", "VerifyClientCertIfGiven",
                                          "RequireAndVerifyClientCert"};
    yaml += fmt::format("  client_auth_type: {}\n", kAuth[static_cast<int>(tls->client_auth)]);
    if (tls->min_version)
      yaml += fmt::format("  min_version: {}\n", version_name(tls->min_version));
    if (tls->max_version)
      yaml += fmt::format("  max_version: {}\n", version_name(tls->max_version));
  }
  if (!config->basic_auth_users.empty()) {
    yaml += "basic_auth_users:\n";
    for (const auto& [user, hash] : config->basic_auth_users) {
      FUZZ_CHECK(hash.starts_with("$2"));
      // An explicit key ("? KEY"): YAML limits implicit keys to 1024 characters.
      yaml += fmt::format("  ? {}\n  : {}\n", yaml_quoted(user), yaml_quoted(hash));
    }
  }
  // Round trip: the config written back as YAML parses to the same config.
  const auto again = serve::parse_web_config(yaml, "/elsewhere");
  FUZZ_CHECK(again.ok() && same(*again, *config));
  return 0;
}
