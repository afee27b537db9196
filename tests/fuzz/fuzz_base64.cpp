// The base64 of an HTTP basic-auth header (serve::decode_base64), as any client sends it.
#include <openssl/evp.h>

#include "fuzz.h"
#include "serve/web_config.h"

using namespace vcpumap;

namespace {

std::string encode_base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto bytes = serve::decode_base64(text);
  if (!bytes) return 0;
  // Bounds: 3 bytes for every 4 characters.
  FUZZ_CHECK(bytes->size() * 4 <= size * 3);
  // Round trip: OpenSSL's encoding of the bytes decodes to them, and so does the input again.
  const auto again = serve::decode_base64(encode_base64(*bytes));
  FUZZ_CHECK(again.has_value() && *again == *bytes);
  // Padding ('=') may be left out, as some clients do.
  auto unpadded = encode_base64(*bytes);
  while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
  FUZZ_CHECK(serve::decode_base64(unpadded) == bytes);
  return 0;
}
