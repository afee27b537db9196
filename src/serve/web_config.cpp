#include "serve/web_config.h"

#include <crypt.h>
#include <nettle/base64.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <yaml.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

namespace vcpumap::serve {
namespace {

// A parsed YAML document, freed with it. libyaml's node API keeps every node in the document.
class YamlDocument {
 public:
  YamlDocument() = default;
  YamlDocument(const YamlDocument&) = delete;
  YamlDocument& operator=(const YamlDocument&) = delete;
  ~YamlDocument() {
    if (loaded_) yaml_document_delete(&document_);
  }

  Status load(std::string_view text) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return Error{"web config: out of memory"};
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    const bool ok = yaml_parser_load(&parser, &document_) != 0;
    Status status = Ok{};
    if (!ok) {
      status = make_error(ExitCode::bad_input, "web config: YAML error at line {}: {}",
                          parser.problem_mark.line + 1,
                          parser.problem != nullptr ? parser.problem : "unknown");
    }
    loaded_ = ok;
    yaml_parser_delete(&parser);
    return status;
  }

  yaml_node_t* root() { return loaded_ ? yaml_document_get_root_node(&document_) : nullptr; }
  yaml_node_t* node(int index) { return yaml_document_get_node(&document_, index); }

 private:
  yaml_document_t document_{};
  bool loaded_ = false;
};

std::string scalar(const yaml_node_t* node) {
  return {reinterpret_cast<const char*>(node->data.scalar.value), node->data.scalar.length};
}

Error config_error(std::string_view what) {
  return make_error(ExitCode::bad_input, "web config: {}", what);
}

// The key/value pairs of a mapping node, keys as text; an error when a key is not a scalar.
Result<std::vector<std::pair<std::string, yaml_node_t*>>> mapping(YamlDocument& document,
                                                                  yaml_node_t* node,
                                                                  std::string_view where) {
  std::vector<std::pair<std::string, yaml_node_t*>> pairs;
  if (node->type == YAML_SCALAR_NODE && node->data.scalar.length == 0) return pairs;  // `key:`
  if (node->type != YAML_MAPPING_NODE) return config_error(fmt::format("{} must be a map", where));
  for (auto* pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; ++pair) {
    yaml_node_t* key = document.node(pair->key);
    if (key == nullptr || key->type != YAML_SCALAR_NODE) {
      return config_error(fmt::format("{}: keys must be plain text", where));
    }
    pairs.emplace_back(scalar(key), document.node(pair->value));
  }
  return pairs;
}

Result<std::string> scalar_value(const yaml_node_t* node, std::string_view key) {
  if (node == nullptr || node->type != YAML_SCALAR_NODE) {
    return config_error(fmt::format("{} must be a plain value", key));
  }
  return scalar(node);
}

Result<int> tls_version(std::string_view name, std::string_view key) {
  if (name == "TLS10") return kTls10;
  if (name == "TLS11") return kTls11;
  if (name == "TLS12") return kTls12;
  if (name == "TLS13") return kTls13;
  return config_error(fmt::format("{}: '{}' is not one of TLS10, TLS11, TLS12, TLS13", key, name));
}

Result<TlsConfig> parse_tls(YamlDocument& document, yaml_node_t* node,
                            const std::filesystem::path& base_dir) {
  auto pairs = mapping(document, node, "tls_server_config");
  if (!pairs) return pairs.error();
  TlsConfig tls;
  const auto path = [&](const std::string& text) {
    std::filesystem::path file(text);
    return file.is_relative() ? base_dir / file : file;
  };
  for (const auto& [key, value_node] : *pairs) {
    auto value = scalar_value(value_node, key);
    if (!value) return value.error();
    const bool file = key == "cert_file" || key == "key_file" || key == "client_ca_file";
    if (file && (value->empty() || value->back() == '/')) {
      // "cert_file: #x" is a comment, so an empty value: it would name the config's folder.
      return config_error(
          fmt::format("tls_server_config.{}: '{}' is not a file name (quote a path that holds '#')",
                      key, *value));
    }
    if (key == "cert_file") {
      tls.cert_file = path(*value);
    } else if (key == "key_file") {
      tls.key_file = path(*value);
    } else if (key == "client_ca_file") {
      tls.client_ca_file = path(*value);
    } else if (key == "client_auth_type") {
      if (*value == "NoClientCert" || value->empty()) {
        tls.client_auth = ClientAuth::none;
      } else if (*value == "VerifyClientCertIfGiven") {
        tls.client_auth = ClientAuth::verify_if_given;
      } else if (*value == "RequireAndVerifyClientCert") {
        tls.client_auth = ClientAuth::require_and_verify;
      } else {
        return config_error(fmt::format(
            "client_auth_type '{}' is not supported; use NoClientCert, VerifyClientCertIfGiven "
            "or RequireAndVerifyClientCert",
            *value));
      }
    } else if (key == "min_version" || key == "max_version") {
      auto version = tls_version(*value, key);
      if (!version) return version.error();
      (key == "min_version" ? tls.min_version : tls.max_version) = *version;
    } else {
      return config_error(fmt::format("tls_server_config: '{}' is not supported by vcpumap", key));
    }
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return config_error("tls_server_config needs both cert_file and key_file");
  }
  if (tls.client_auth != ClientAuth::none && tls.client_ca_file.empty()) {
    return config_error("client_auth_type needs client_ca_file");
  }
  return tls;
}

// Nettle, which GnuTLS loads anyway: OpenSSL's libcrypto only for this cost every command 3,400
// symbol bindings at start-up, a third of the dynamic loader's time.
std::string sha256(std::string_view text) {
  sha256_ctx context;
  sha256_init(&context);
  sha256_update(&context, text.size(), reinterpret_cast<const std::uint8_t*>(text.data()));
  std::string digest(SHA256_DIGEST_SIZE, '\0');
  sha256_digest(&context, digest.size(), reinterpret_cast<std::uint8_t*>(digest.data()));
  return digest;
}

bool equal_in_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && memeql_sec(a.data(), b.data(), a.size()) != 0;
}

// bcrypt through libxcrypt's crypt_rn: $2a$, $2b$ and $2y$ hashes, as Go's bcrypt reads them.
bool bcrypt_matches(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();  // ~32 KiB: not on a worker's stack
  const char* result = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  return result != nullptr && result[0] != '*' && equal_in_constant_time(result, hash);
}

}  // namespace

Result<WebConfig> parse_web_config(std::string_view yaml, const std::filesystem::path& base_dir) {
  YamlDocument document;
  if (auto status = document.load(yaml); !status) return status.error();
  WebConfig config;
  yaml_node_t* root = document.root();
  if (root == nullptr) return config;  // an empty file: no TLS, no auth
  auto pairs = mapping(document, root, "the web config");
  if (!pairs) return pairs.error();
  for (const auto& [key, node] : *pairs) {
    if (key == "tls_server_config") {
      auto tls = parse_tls(document, node, base_dir);
      if (!tls) return tls.error();
      config.tls = std::move(*tls);
    } else if (key == "basic_auth_users") {
      auto users = mapping(document, node, "basic_auth_users");
      if (!users) return users.error();
      for (const auto& [user, hash_node] : *users) {
        auto hash = scalar_value(hash_node, "basic_auth_users." + user);
        if (!hash) return hash.error();
        if (!hash->starts_with("$2")) {
          return config_error(
              fmt::format("basic_auth_users.{}: not a bcrypt hash ($2b$...)", user));
        }
        config.basic_auth_users[user] = *hash;
      }
    } else {
      return config_error(
          fmt::format("'{}' is not supported by vcpumap (it knows "
                      "tls_server_config and basic_auth_users)",
                      key));
    }
  }
  return config;
}

Result<WebConfig> load_web_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return make_error(ExitCode::bad_input, "web config {}: can't read it", file.string());
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto config = parse_web_config(text.str(), file.parent_path());
  if (!config) {
    return make_error(ExitCode::bad_input, "{} ({})", config.error().message, file.string());
  }
  return config;
}

std::optional<std::string> decode_base64(std::string_view text) {
  // Whole groups of four, padded, as Go's base64.StdEncoding (exporter-toolkit) wants them.
  if (text.size() % 4 != 0 || text.find_first_of(" \t\n\v\f\r") != std::string_view::npos) {
    return std::nullopt;  // nettle skips white space; Go does not
  }
  std::string out(BASE64_DECODE_LENGTH(text.size()), '\0');
  base64_decode_ctx context;
  base64_decode_init(&context);
  std::size_t length = out.size();
  if (base64_decode_update(&context, &length, reinterpret_cast<std::uint8_t*>(out.data()),
                           text.size(), text.data()) != 1 ||
      base64_decode_final(&context) != 1) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

bool BasicAuth::check(std::string_view authorization_header) {
  constexpr std::string_view kScheme = "Basic ";
  if (!authorization_header.starts_with(kScheme)) return false;
  const auto credentials = decode_base64(authorization_header.substr(kScheme.size()));
  if (!credentials) return false;
  const auto colon = credentials->find(':');
  if (colon == std::string::npos) return false;
  const std::string user = credentials->substr(0, colon);
  const std::string password = credentials->substr(colon + 1);
  const std::string digest = sha256(password);
  {
    std::lock_guard lock(mutex_);
    const auto found = verified_.find(user);
    if (found != verified_.end() && equal_in_constant_time(found->second, digest)) return true;
  }
  const auto entry = users_.find(user);
  // An unknown user costs a bcrypt too, so timing does not tell which user names exist.
  static constexpr const char* kDummyHash =
      "$2b$10$abcdefghijklmnopqrstuuvdU0Yyc.Kf6Dd4rQQ4jYJcTsmPNKWrq";
  const bool matches = bcrypt_matches(password, entry != users_.end() ? entry->second : kDummyHash);
  if (!matches || entry == users_.end()) return false;
  std::lock_guard lock(mutex_);
  verified_[user] = digest;
  return true;
}

}  // namespace vcpumap::serve
