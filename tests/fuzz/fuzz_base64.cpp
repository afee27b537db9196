// The base64 of an HTTP basic-auth header (serve::decode_base64), as any client sends it.
#include <nettle/base64.h>

#include "fuzz.h"
#include "serve/web_config.h"

using namespace vcpumap;

namespace {

std::string encode_base64(std::string_view bytes) {
  std::string out(BASE64_ENCODE_RAW_LENGTH(bytes.size()), '\0');
  base64_encode_raw(reinterpret_cast<char*>(out.data()), bytes.size(),
                    reinterpret_cast<const std::uint8_t*>(bytes.data()));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto bytes = serve::decode_base64(text);
  if (!bytes) return 0;
  // Bounds: 3 bytes for every 4 characters.
  FUZZ_CHECK(bytes->size() * 4 <= size * 3);
  // Round trip: nettle's encoding of the bytes decodes to them.
  const auto again = serve::decode_base64(encode_base64(*bytes));
  FUZZ_CHECK(again.has_value() && *again == *bytes);
  // Padding ('=') may not be left out: Go's decoder (exporter-toolkit) refuses that too.
  auto unpadded = encode_base64(*bytes);
  if (!unpadded.empty() && unpadded.back() == '=') {
    while (unpadded.back() == '=') unpadded.pop_back();
    FUZZ_CHECK(!serve::decode_base64(unpadded).has_value());
  }
  return 0;
}
