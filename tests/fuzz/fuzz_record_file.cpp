// A whole recording file through RecordingReader (src/record/file.*): header (versions 1 and 2),
// CRC-framed blocks, blocks of unknown types skipped, a file cut short or damaged. Each input is
// read twice: as it is (a damaged CRC stops reading) and with every block's CRC made right, so
// the fuzzer reaches the payload decoders too.
#include <sstream>

#include "fuzz.h"
#include "record/file.h"
#include "record/format.h"

using namespace vcpumap;
using namespace vcpumap::record;

namespace {

struct Read {
  // Each block's type and its payload encoded again by the writer's encoder.
  std::vector<std::pair<BlockType, std::string>> blocks;
  std::uint64_t valid_bytes = 0;
  bool stopped_early = false;
  bool saw_end = false;
  bool opened = false;
  std::uint32_t version = kFormatVersion;
  std::uint64_t skipped = 0;
};

// A block encoded as a file of `version` holds it.
std::string encode(const Block& block, std::uint32_t version) {
  if (const auto* events = std::get_if<EventBlock>(&block)) return encode_payload(*events, version);
  return std::visit([](const auto& b) { return encode_payload(b); }, block);
}

Read read_all(std::string_view bytes) {
  Read result;
  auto reader = RecordingReader::from_stream(
      std::make_unique<std::istringstream>(std::string(bytes)), "fuzz.vcpumap", bytes.size());
  if (!reader) return result;
  result.opened = true;
  result.version = reader->version();
  while (auto block = reader->next()) {
    result.saw_end = result.saw_end || std::holds_alternative<EndBlock>(*block);
    // Block's alternatives are in BlockType's order, from host = 1.
    const auto type = static_cast<BlockType>(block->index() + 1);
    result.blocks.emplace_back(type, encode(*block, result.version));
  }
  result.skipped = reader->skipped_blocks();
  result.valid_bytes = reader->valid_bytes();
  result.stopped_early = reader->stopped_early();
  FUZZ_CHECK(reader->stopped_early() == !reader->problem().empty());
  return result;
}

// `bytes` with each frame's CRC rewritten to match its type and payload.
std::string with_right_crcs(std::string bytes) {
  std::size_t at = kFileHeaderSize;
  while (at + 5 <= bytes.size()) {
    std::uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= std::uint32_t(std::uint8_t(bytes[at + i])) << (8 * i);
    if (length > kMaxBlockPayload || at + kBlockOverhead + length > bytes.size()) break;
    const auto crc =
        block_crc(std::uint8_t(bytes[at + 4]), std::string_view(bytes).substr(at + 5, length));
    for (int i = 0; i < 4; ++i) bytes[at + 5 + length + i] = static_cast<char>(crc >> (8 * i));
    at += kBlockOverhead + length;
  }
  return bytes;
}

void check(std::string_view bytes) {
  const Read read = read_all(bytes);
  if (!read.opened) return;
  // Bounds: what was read lies inside the file, each block at least a frame long.
  FUZZ_CHECK(read.valid_bytes >= kFileHeaderSize && read.valid_bytes <= bytes.size());
  FUZZ_CHECK(kFileHeaderSize + (read.blocks.size() + read.skipped) * kBlockOverhead <=
             read.valid_bytes);
  FUZZ_CHECK(read.version >= kOldestFormatVersion && read.version <= kFormatVersion);
  // A clean file ends with an end block and nothing after its last block.
  FUZZ_CHECK(read.stopped_early || (read.saw_end && read.valid_bytes == bytes.size()));
  // The file cut after its last valid block reads the same blocks (a recording killed there).
  const Read prefix = read_all(bytes.substr(0, read.valid_bytes));
  FUZZ_CHECK(prefix.blocks == read.blocks && prefix.valid_bytes == read.valid_bytes);
  FUZZ_CHECK(prefix.stopped_early == !read.saw_end);
  // Round trip: the blocks written again by the writer's framing, in the file's version, read
  // back the same (the skipped ones are not written again).
  std::string written = encode_file_header(read.version);
  for (const auto& [type, payload] : read.blocks) written += frame_block(type, payload);
  const Read again = read_all(written);
  FUZZ_CHECK(again.blocks == read.blocks && again.skipped == 0);
  FUZZ_CHECK(again.stopped_early == !again.saw_end);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = fuzz::as_text(data, size);
  check(bytes);
  check(with_right_crcs(std::string(bytes)));
  return 0;
}
