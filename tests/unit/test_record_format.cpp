// The recording file format: round trip, files cut short at every byte, damaged blocks, and a
// version this build does not read.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "fixture_tree.h"

#include "record/file.h"

namespace vcpumap::record {
namespace {

namespace fs = std::filesystem;

using vcpumap::testing::make_cpu;

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/vcpumap-rec-test.XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

HostBlock sample_host() {
  HostBlock host;
  host.tool_version = "vcpumap test";
  host.hostname = "hv1";
  host.kernel = "6.1.0";
  host.mode = Mode::exact;
  host.interval_ns = 100'000'000;
  host.start_wall_ns = 1'700'000'000'000'000'000;
  for (int cpu = 0; cpu < 4; ++cpu) {
    host.topology.cpus.push_back(make_cpu(cpu, cpu / 2, 0, cpu / 2));
  }
  host.topology.packages = 1;
  host.topology.cores = 2;
  host.topology.threads_per_core = 2;
  host.topology.hypervisor_vendor = "KVM";
  host.vm_filter = {"web"};
  return host;
}

IdentityBlock sample_identity() {
  IdentityBlock identity;
  identity.vms.push_back(
      {0, 1234, "web", "c0ffee00-0000-0000-0000-000000000001", Hypervisor::qemu});
  identity.threads.push_back({0, 0, 1240, "CPU 0/KVM", ThreadRole::vcpu, 0, "", 5000, "0-3"});
  identity.threads.push_back({1, 0, 1241, "CPU 1/KVM", ThreadRole::vcpu, 1, "", 5001, "2"});
  identity.threads.push_back(
      {2, 0, 1234, "qemu-system-x86", ThreadRole::emulator_main, -1, "", 4999, "0-3"});
  return identity;
}

SampleBlock sample_samples(int count, std::uint64_t first_time) {
  SampleBlock block;
  for (int i = 0; i < count; ++i) {
    SampleRecord sample;
    sample.time_ns = first_time + std::uint64_t(i) * 100'000'000;
    sample.threads.push_back(
        {0, i % 4, 'R', 1'000'000'000ull + i * 90'000'000ull, 5'000ull * i, std::uint64_t(7 + i)});
    sample.threads.push_back({1, 2, 'S', 20'000ull * i, std::nullopt, std::nullopt});
    sample.threads.push_back({2, -1, 'D', std::nullopt, 3, 0});
    block.samples.push_back(sample);
  }
  return block;
}

EventBlock sample_events() {
  EventBlock block;
  block.events.push_back({EventKind::switch_in, 10, 0, 1, -1, 'R', 0, {}, false});
  block.events.push_back({EventKind::switch_out, 5'000'010, 0, 1, -1, 'S', 0, {}, false});
  block.events.push_back({EventKind::migrate, 5'000'500, 0, 3, 1, 'R', 0, {}, false});
  block.events.push_back({EventKind::wakeup, 5'000'500, 0, 3, -1, 'R', 0, {}, false});
  block.events.push_back({EventKind::lost, 6'000'000, 0, 2, -1, 'R', 42, {}, false});
  return block;
}

// Writes the sample recording; gives each block's end offset.
std::vector<std::uint64_t> write_sample_file(const fs::path& path) {
  auto writer = RecordingWriter::create(path);
  EXPECT_TRUE(writer.ok());
  std::vector<std::uint64_t> ends;
  EXPECT_TRUE(writer->write(sample_host()).ok());
  ends.push_back(writer->size());
  EXPECT_TRUE(writer->write(sample_identity()).ok());
  ends.push_back(writer->size());
  EXPECT_TRUE(writer->write(sample_samples(5, 0)).ok());
  ends.push_back(writer->size());
  EXPECT_TRUE(writer->write(sample_events()).ok());
  ends.push_back(writer->size());
  EXPECT_TRUE(writer->write(EndBlock{6'000'000, 5, 5, 42, "duration reached"}).ok());
  ends.push_back(writer->size());
  return ends;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
}

TEST(RecordFormat, VarintsRoundTripAtTheEdges) {
  for (std::uint64_t value : std::initializer_list<std::uint64_t>{0, 1, 127, 128, 300, ~0ull}) {
    std::string bytes;
    put_varint(bytes, value);
    ByteReader in(bytes);
    EXPECT_EQ(in.varint(), value);
    EXPECT_TRUE(in.ok() && in.at_end());
  }
  for (std::int64_t value :
       std::initializer_list<std::int64_t>{0, -1, 1, -64, 64, INT64_MIN, INT64_MAX}) {
    std::string bytes;
    put_signed(bytes, value);
    ByteReader in(bytes);
    EXPECT_EQ(in.signed_varint(), value);
  }
  std::string small;
  put_signed(small, -3);
  EXPECT_EQ(small.size(), 1u);  // zigzag keeps small negatives small
  ByteReader empty("");
  empty.varint();
  EXPECT_FALSE(empty.ok());
}

TEST(RecordFormat, RoundTrip) {
  TempDir dir;
  const auto path = dir.path / "r.rec";
  write_sample_file(path);
  auto reader = RecordingReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  std::vector<Block> blocks;
  while (auto block = reader->next()) blocks.push_back(*block);
  EXPECT_FALSE(reader->stopped_early()) << reader->problem();
  ASSERT_EQ(blocks.size(), 5u);

  const auto& host = std::get<HostBlock>(blocks[0]);
  EXPECT_EQ(host.hostname, "hv1");
  EXPECT_EQ(host.mode, Mode::exact);
  EXPECT_EQ(host.start_wall_ns, 1'700'000'000'000'000'000);
  ASSERT_EQ(host.topology.cpus.size(), 4u);
  EXPECT_EQ(host.topology.cpus[3].core, 1);
  EXPECT_EQ(host.topology.cpus[3].node, 1);
  EXPECT_EQ(host.topology.hypervisor_vendor, "KVM");
  EXPECT_EQ(host.vm_filter, std::vector<std::string>{"web"});

  const auto& identity = std::get<IdentityBlock>(blocks[1]);
  ASSERT_EQ(identity.threads.size(), 3u);
  EXPECT_EQ(identity.vms[0].uuid, "c0ffee00-0000-0000-0000-000000000001");
  EXPECT_EQ(identity.threads[1].name, "CPU 1/KVM");
  EXPECT_EQ(identity.threads[1].vcpu, 1);
  EXPECT_EQ(identity.threads[2].role, ThreadRole::emulator_main);
  EXPECT_EQ(identity.threads[2].vcpu, -1);

  const auto& samples = std::get<SampleBlock>(blocks[2]);
  const auto expected = sample_samples(5, 0);
  ASSERT_EQ(samples.samples.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(samples.samples[i].time_ns, expected.samples[i].time_ns);
    for (std::size_t j = 0; j < 3; ++j) {
      const auto& got = samples.samples[i].threads[j];
      const auto& want = expected.samples[i].threads[j];
      EXPECT_EQ(got.key, want.key);
      EXPECT_EQ(got.cpu, want.cpu);
      EXPECT_EQ(got.state, want.state);
      EXPECT_EQ(got.cpu_time_ns, want.cpu_time_ns);
      EXPECT_EQ(got.run_delay_ns, want.run_delay_ns);
      EXPECT_EQ(got.migrations, want.migrations);
    }
  }
  const auto& events = std::get<EventBlock>(blocks[3]).events;
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[1].state, 'S');
  EXPECT_EQ(events[2].kind, EventKind::migrate);
  EXPECT_EQ(events[2].orig_cpu, 1);
  EXPECT_EQ(events[2].cpu, 3);
  EXPECT_EQ(events[4].lost, 42u);
  EXPECT_EQ(events[4].time_ns, 6'000'000u);
  EXPECT_EQ(std::get<EndBlock>(blocks[4]).reason, "duration reached");
}

TEST(RecordFormat, CutShortAtEveryByteReadsUpToTheLastCompleteBlock) {
  TempDir dir;
  const auto full = dir.path / "full.rec";
  const auto ends = write_sample_file(full);
  const std::string bytes = read_bytes(full);
  ASSERT_EQ(bytes.size(), ends.back());
  const auto cut = dir.path / "cut.rec";
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    write_bytes(cut, std::string_view(bytes).substr(0, size));
    auto reader = RecordingReader::open(cut);
    if (size < kFileHeaderSize) {
      EXPECT_FALSE(reader.ok()) << "size " << size;
      continue;
    }
    ASSERT_TRUE(reader.ok()) << "size " << size << ": " << reader.error().message;
    std::size_t blocks = 0;
    while (reader->next()) ++blocks;
    std::size_t complete = 0;
    while (complete < ends.size() && ends[complete] <= size) ++complete;
    EXPECT_EQ(blocks, complete) << "size " << size;
    EXPECT_TRUE(reader->stopped_early()) << "size " << size;
    EXPECT_NE(reader->problem().find("cut short"), std::string::npos) << reader->problem();
    EXPECT_EQ(reader->valid_bytes(), complete ? ends[complete - 1] : kFileHeaderSize);
  }
}

TEST(RecordFormat, DamagedBlockStopsThereAndSaysSo) {
  TempDir dir;
  const auto path = dir.path / "bad.rec";
  const auto ends = write_sample_file(path);
  std::string bytes = read_bytes(path);
  bytes[ends[1] + 20] ^= 0x40;  // inside the samples block
  write_bytes(path, bytes);
  auto reader = RecordingReader::open(path);
  ASSERT_TRUE(reader.ok());
  std::size_t blocks = 0;
  while (reader->next()) ++blocks;
  EXPECT_EQ(blocks, 2u);
  EXPECT_TRUE(reader->stopped_early());
  EXPECT_NE(reader->problem().find("damaged block at byte " + std::to_string(ends[1])),
            std::string::npos)
      << reader->problem();

  // A length field turned huge is damage too, not a reason to allocate gigabytes.
  bytes = read_bytes(path);
  bytes[ends[0] + 3] = '\x7f';
  write_bytes(path, bytes);
  auto again = RecordingReader::open(path);
  ASSERT_TRUE(again.ok());
  blocks = 0;
  while (again->next()) ++blocks;
  EXPECT_EQ(blocks, 1u);
  EXPECT_NE(again->problem().find("damaged"), std::string::npos) << again->problem();
}

TEST(RecordFormat, OtherVersionsAndOtherFilesGiveAClearError) {
  TempDir dir;
  const auto path = dir.path / "v3.rec";
  write_sample_file(path);
  std::string bytes = read_bytes(path);
  bytes[8] = 3;
  write_bytes(path, bytes);
  auto reader = RecordingReader::open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.error().message.find("version 3"), std::string::npos);
  EXPECT_NE(reader.error().message.find("newer vcpumap"), std::string::npos);
  bytes[8] = 0;
  write_bytes(path, bytes);
  auto old = RecordingReader::open(path);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.error().message.find("older vcpumap"), std::string::npos);

  write_bytes(path, "hello, this is not a recording");
  auto other = RecordingReader::open(path);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("not a vcpumap recording"), std::string::npos);
}

}  // namespace
}  // namespace vcpumap::record
