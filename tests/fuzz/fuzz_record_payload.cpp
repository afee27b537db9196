// One block of a recording (record::decode_payload, frame_block, RecordingReader): the first byte
// is the block type (its high bit set: a block of a version-1 file), the rest its payload.
#include <sstream>

#include "fuzz.h"
#include "record/file.h"
#include "record/format.h"

using namespace vcpumap;
using namespace vcpumap::record;

namespace {

std::string encode(const Block& block, std::uint32_t version) {
  if (const auto* events = std::get_if<EventBlock>(&block)) return encode_payload(*events, version);
  return std::visit([](const auto& b) { return encode_payload(b); }, block);
}

std::size_t items(const Block& block) {
  if (const auto* host = std::get_if<HostBlock>(&block)) {
    return host->topology.cpus.size() + host->vm_filter.size();
  }
  if (const auto* identity = std::get_if<IdentityBlock>(&block)) {
    return identity->vms.size() + identity->threads.size();
  }
  if (const auto* samples = std::get_if<SampleBlock>(&block)) {
    std::size_t count = samples->samples.size();
    for (const auto& sample : samples->samples) count += sample.threads.size();
    return count;
  }
  if (const auto* events = std::get_if<EventBlock>(&block)) return events->events.size();
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t type = data[0] & 0x7f;
  const std::uint32_t version = data[0] & 0x80 ? 1 : kFormatVersion;
  const auto payload = fuzz::as_text(data + 1, size - 1);
  const auto block = decode_payload(type, payload, version);
  if (!block) return 0;
  // Bounds: every item of a block takes at least one byte of its payload.
  FUZZ_CHECK(items(*block) <= payload.size());
  // Round trip: what the writer would encode for the block decodes to a block it encodes the
  // same way (the first encoding may differ from the input: the fuzzer writes numbers in more
  // bytes than needed).
  const std::string encoded = encode(*block, version);
  const auto decoded = decode_payload(type, encoded, version);
  FUZZ_CHECK(decoded.ok() && decoded->index() == block->index());
  FUZZ_CHECK(encode(*decoded, version) == encoded);
  // The block framed as the writer frames it, in a file, reads back through the reader.
  const std::string file =
      encode_file_header(version) + frame_block(static_cast<BlockType>(type), encoded);
  auto reader =
      RecordingReader::from_stream(std::make_unique<std::istringstream>(file), "fuzz", file.size());
  FUZZ_CHECK(reader.ok());
  const auto read = reader->next();
  FUZZ_CHECK(read.has_value() && encode(*read, version) == encoded);
  FUZZ_CHECK(reader->valid_bytes() == file.size());
  return 0;
}
