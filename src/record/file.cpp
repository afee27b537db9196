#include "record/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vcpumap::record {

Result<RecordingWriter> RecordingWriter::create(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    return make_error(ExitCode::bad_input, "can't create {}: {}", path.string(),
                      std::strerror(errno));
  }
  RecordingWriter writer(std::move(fd), path.string());
  const std::string header = encode_file_header();
  if (::write(writer.fd_.get(), header.data(), header.size()) !=
      static_cast<ssize_t>(header.size())) {
    return make_error(ExitCode::failure, "can't write {}: {}", path.string(), std::strerror(errno));
  }
  writer.size_ = header.size();
  return writer;
}

Status RecordingWriter::append(BlockType type, const std::string& payload) {
  const std::string framed = frame_block(type, payload);
  std::size_t done = 0;
  while (done < framed.size()) {
    const ssize_t wrote = ::write(fd_.get(), framed.data() + done, framed.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) {
      const int error = wrote < 0 ? errno : ENOSPC;
      // Cut back to the last whole block so the file stays clean when the disk allows it.
      if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) == 0) {
        ::lseek(fd_.get(), static_cast<off_t>(size_), SEEK_SET);
      }
      return make_error(ExitCode::failure, "can't write {}: {}", path_, std::strerror(error));
    }
    done += static_cast<std::size_t>(wrote);
  }
  size_ += framed.size();
  return Ok{};
}

Result<RecordingReader> RecordingReader::open(const std::filesystem::path& path) {
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in) {
    return make_error(ExitCode::bad_input, "can't open {}: {}", path.string(),
                      std::strerror(errno));
  }
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  return from_stream(std::move(in), path.string(), error ? 0 : size);
}

Result<RecordingReader> RecordingReader::from_stream(std::unique_ptr<std::istream> in,
                                                     std::string name, std::uint64_t size) {
  RecordingReader reader;
  reader.path_ = std::move(name);
  reader.in_ = std::move(in);
  reader.file_size_ = size;
  std::string header(kFileHeaderSize, '\0');
  reader.in_->read(header.data(), static_cast<std::streamsize>(header.size()));
  header.resize(static_cast<std::size_t>(reader.in_->gcount()));
  auto version = check_file_header(header);
  if (!version) {
    return make_error(version.error().exit_code, "{}: {}", reader.path_, version.error().message);
  }
  reader.version_ = *version;
  reader.valid_bytes_ = kFileHeaderSize;
  return reader;
}

std::optional<Block> RecordingReader::next() {
  bool skipped = false;
  for (;;) {
    auto block = read_block(skipped);
    if (block || !skipped) return block;
    skipped = false;
  }
}

std::optional<Block> RecordingReader::read_block(bool& skipped) {
  if (done_) return std::nullopt;
  const std::uint64_t offset = valid_bytes_;
  auto stop = [&](std::string why) -> std::optional<Block> {
    done_ = true;
    problem_ = std::move(why);
    return std::nullopt;
  };
  auto cut_short = [&] {
    return stop(fmt::format(
        "the file ends inside a block at byte {} (it was cut short: kill -9, a crash or a full "
        "disk); read up to the last complete block",
        offset));
  };
  char frame[5];
  in_->read(frame, sizeof frame);
  const auto got = in_->gcount();
  if (got == 0) {
    done_ = true;
    if (!saw_end_) {
      problem_ = fmt::format(
          "the file has no end block: the recording was cut short (kill -9, a crash or a full "
          "disk); read up to byte {}",
          offset);
    }
    return std::nullopt;
  }
  if (got < static_cast<std::streamsize>(sizeof frame)) return cut_short();
  std::uint32_t length = 0;
  for (int i = 0; i < 4; ++i) length |= std::uint32_t(std::uint8_t(frame[i])) << (8 * i);
  const auto type = static_cast<std::uint8_t>(frame[4]);
  if (length > kMaxBlockPayload) {
    return stop(fmt::format("damaged block at byte {} (length {}): stopped there", offset, length));
  }
  // Read in pieces of at most 1 MiB: a damaged length must not allocate 64 MiB when the file
  // ends long before.
  std::string payload;
  const std::size_t wanted = std::size_t{length} + 4;
  while (payload.size() < wanted) {
    const std::size_t had = payload.size();
    const std::size_t piece = std::min<std::size_t>(wanted - had, 1 << 20);
    payload.resize(had + piece);
    in_->read(payload.data() + had, static_cast<std::streamsize>(piece));
    payload.resize(had + static_cast<std::size_t>(in_->gcount()));
    if (payload.size() < had + piece) return cut_short();
  }
  std::uint32_t crc = 0;
  for (int i = 0; i < 4; ++i) crc |= std::uint32_t(std::uint8_t(payload[length + i])) << (8 * i);
  payload.resize(length);
  if (crc != block_crc(type, payload)) {
    return stop(fmt::format("damaged block at byte {} (CRC mismatch): stopped there", offset));
  }
  if (!known_block_type(type)) {
    // A newer writer's block, whole and with a right CRC: not damage, and nothing here reads it.
    valid_bytes_ += kBlockOverhead + length;
    ++skipped_blocks_;
    skipped = true;
    return std::nullopt;
  }
  auto block = decode_payload(type, payload, version_);
  if (!block) {
    return stop(
        fmt::format("damaged block at byte {} ({}): stopped there", offset, block.error().message));
  }
  valid_bytes_ += kBlockOverhead + length;
  if (std::holds_alternative<EndBlock>(*block)) saw_end_ = true;
  return std::move(block).value();
}

}  // namespace vcpumap::record
