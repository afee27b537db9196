// Writing and reading recording files. The writer appends whole blocks with one write each, so
// a file cut short (kill -9, crash, full disk) ends with complete blocks and at most one partial
// block, which the reader recognises and reports.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <memory>
#include <optional>
#include <string>

#include "record/format.h"
#include "util/fd.h"
#include "util/result.h"

namespace vcpumap::record {

class RecordingWriter {
 public:
  // Creates (or truncates) `path` and writes the file header.
  static Result<RecordingWriter> create(const std::filesystem::path& path);

  // Appends one block; on failure (e.g. ENOSPC) the file still holds every earlier block.
  Status write(const HostBlock& block) { return append(BlockType::host, encode_payload(block)); }
  Status write(const IdentityBlock& block) {
    return append(BlockType::identity, encode_payload(block));
  }
  Status write(const SampleBlock& block) {
    return append(BlockType::samples, encode_payload(block));
  }
  Status write(const EventBlock& block) { return append(BlockType::events, encode_payload(block)); }
  Status write(const EndBlock& block) { return append(BlockType::end, encode_payload(block)); }

  // Bytes in the file so far.
  std::uint64_t size() const { return size_; }

 private:
  RecordingWriter(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Status append(BlockType type, const std::string& payload);

  Fd fd_;
  std::string path_;
  std::uint64_t size_ = 0;
};

class RecordingReader {
 public:
  // Opens a recording; an error when it is not one or has another format version.
  static Result<RecordingReader> open(const std::filesystem::path& path);
  // Reads a recording from `in` (`size` bytes long), named `name` in messages: the seam the fuzz
  // target and tests use to read bytes held in memory.
  static Result<RecordingReader> from_stream(std::unique_ptr<std::istream> in, std::string name,
                                             std::uint64_t size);

  // The next complete, valid block; nullopt where reading stops (see stopped_early()).
  std::optional<Block> next();
  // True when the file ended without an end block or with a damaged block.
  bool stopped_early() const { return !problem_.empty(); }
  // Why reading stopped early, in one line naming the byte offset.
  const std::string& problem() const { return problem_; }
  // Bytes of the file read as complete, valid blocks (header included).
  std::uint64_t valid_bytes() const { return valid_bytes_; }
  // The file's size.
  std::uint64_t file_size() const { return file_size_; }
  // The file's format version (1 or 2).
  std::uint32_t version() const { return version_; }
  // Whole blocks of types this vcpumap does not know (a newer writer's), skipped.
  std::uint64_t skipped_blocks() const { return skipped_blocks_; }

 private:
  RecordingReader() = default;
  // The next block; nullopt with `skipped` set after a block of an unknown type.
  std::optional<Block> read_block(bool& skipped);
  std::unique_ptr<std::istream> in_;
  std::string path_;
  std::string problem_;
  std::uint64_t valid_bytes_ = 0;
  std::uint64_t file_size_ = 0;
  std::uint64_t skipped_blocks_ = 0;
  std::uint32_t version_ = kFormatVersion;
  bool done_ = false;
  bool saw_end_ = false;
};

}  // namespace vcpumap::record
