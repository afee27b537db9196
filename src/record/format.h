// The recording file format (docs/recording-format.md): a versioned file header, then blocks,
// each framed by its length and a CRC32 so a reader can stop at the last complete one.
// Encoding and decoding are pure functions over bytes; the writer and reader add the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "record/recording.h"
#include "util/result.h"

namespace vcpumap::record {

inline constexpr std::string_view kMagic = "VCPUMAPR";  // 8 bytes
// The version this vcpumap writes; it reads every version from kOldestFormatVersion.
inline constexpr std::uint32_t kFormatVersion = 2;
inline constexpr std::uint32_t kOldestFormatVersion = 1;
inline constexpr std::size_t kFileHeaderSize = 12;  // magic + u32 version
// Block frame: u32 payload length, u8 type, payload, u32 CRC32 of type and payload.
inline constexpr std::size_t kBlockOverhead = 9;
// A block larger than this is corruption, not data: the writer never makes one.
inline constexpr std::uint32_t kMaxBlockPayload = 64u << 20;

enum class BlockType : std::uint8_t { host = 1, identity = 2, samples = 3, events = 4, end = 5 };
// True for the block types this vcpumap decodes; a reader skips the others (a newer writer's).
bool known_block_type(std::uint8_t type);

// Appends unsigned LEB128 (7 bits a byte): small numbers take one byte.
void put_varint(std::string& out, std::uint64_t value);
// Appends a signed number zigzag-encoded, so small negative numbers stay small too.
void put_signed(std::string& out, std::int64_t value);
// Appends a length-prefixed string.
void put_string(std::string& out, std::string_view text);

// Reads from a payload; every read fails (sets `ok` false) rather than run past the end.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t varint();
  std::int64_t signed_varint();
  std::uint8_t byte();
  std::string string();
  // The next `size` bytes as they are (empty, and failed, when fewer are left).
  std::string_view take(std::uint64_t size);
  bool ok() const { return ok_; }
  // Marks the payload malformed: a value read whole but out of range.
  void fail() { ok_ = false; }
  bool at_end() const { return pos_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// The 12-byte file header of `version` (tests write older versions).
std::string encode_file_header(std::uint32_t version = kFormatVersion);
// Checks magic and version and gives the version; the error says what the file is and what
// would read it.
Result<std::uint32_t> check_file_header(std::string_view header);

// A whole framed block (length, type, payload, CRC) ready to append to the file.
std::string frame_block(BlockType type, std::string_view payload);
// CRC32 (zlib's) of a block's type byte followed by its payload.
std::uint32_t block_crc(std::uint8_t type, std::string_view payload);

// Payload encoders: one per block type.
std::string encode_payload(const HostBlock& block);
std::string encode_payload(const IdentityBlock& block);
std::string encode_payload(const SampleBlock& block);
// Events in `version`'s layout: version 1 has no peers and no cpu_switch events (they are left
// out), version 2 frames each event with its length.
std::string encode_payload(const EventBlock& block, std::uint32_t version = kFormatVersion);
std::string encode_payload(const EndBlock& block);

// Decodes a payload of a known type in a file of `version`; an error when it is malformed or an
// enum holds a value this vcpumap does not know (CRC was right: a bug or a newer writer).
// Version 2 events of an unknown kind are skipped by their length.
Result<Block> decode_payload(std::uint8_t type, std::string_view payload,
                             std::uint32_t version = kFormatVersion);

}  // namespace vcpumap::record
