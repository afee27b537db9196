// --source: which engine reads the threads' facts.
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "collect/snapshot.h"
#include "sources/bpf/bpf_source.h"
#include "sources/procfs/procfs.h"
#include "sources/procfs/procfs_source.h"

namespace vcpumap {
namespace {

// VCPUMAP_BPF_WALKER=open-coded|iter-task forces one BPF walker (tests exercise both on one
// kernel); unset, the engine takes the best this kernel has.
Result<std::optional<bpf::Walker>> forced_walker() {
  const char* text = std::getenv("VCPUMAP_BPF_WALKER");
  if (text == nullptr || *text == '\0') return std::optional<bpf::Walker>();
  const std::string_view name = text;
  if (name == "open-coded") return std::optional(bpf::Walker::open_coded_iterator);
  if (name == "iter-task") return std::optional(bpf::Walker::seq_file_iterator);
  return make_error(ExitCode::bad_input,
                    "VCPUMAP_BPF_WALKER='{}' names no walker: use open-coded or iter-task", name);
}

}  // namespace

Result<std::unique_ptr<ThreadSource>> open_thread_source(
    const SnapshotOptions& options, bool keep_files, std::vector<std::string>& notes,
    std::optional<std::size_t> kept_file_budget) {
  const auto procfs_source = [&] {
    return std::unique_ptr<ThreadSource>(
        std::make_unique<procfs::ProcfsSource>(options.root, keep_files, kept_file_budget));
  };
  const bool own_root = procfs::is_own_root(options.root);
  if (options.source == SourceChoice::procfs) return procfs_source();
  if (!own_root) {
    if (options.source == SourceChoice::automatic) return procfs_source();
    return make_error(ExitCode::bad_input,
                      "--source bpf reads this machine's kernel, not the tree under --root '{}': "
                      "use --source procfs (or auto) with --root",
                      options.root.string());
  }
  auto walker = forced_walker();
  if (!walker) return walker.error();
  auto bpf_source = bpf::BpfSource::open(*walker);
  if (bpf_source) return std::unique_ptr<ThreadSource>(std::move(*bpf_source));
  if (options.source == SourceChoice::bpf) {
    return make_error(ExitCode::failure, "--source bpf: {}", bpf_source.error().message);
  }
  notes.push_back(fmt::format(
      "BPF not used ({}); thread facts are read from /proc, which costs more (vcpumap doctor "
      "says what this host offers)",
      bpf_source.error().message));
  return procfs_source();
}

}  // namespace vcpumap
