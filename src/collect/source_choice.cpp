// --source: which engine reads the threads' facts.
#include <fmt/format.h>

#include "collect/snapshot.h"
#include "sources/procfs/procfs.h"
#include "sources/procfs/procfs_source.h"

namespace vcpumap {

Result<std::unique_ptr<ThreadSource>> open_thread_source(
    const SnapshotOptions& options, bool keep_files, std::vector<std::string>& notes,
    std::optional<std::size_t> kept_file_budget) {
  (void)notes;
  const bool own_root = procfs::is_own_root(options.root);
  if (options.source == SourceChoice::bpf) {
    if (!own_root) {
      return make_error(ExitCode::bad_input,
                        "--source bpf reads this machine's kernel, not the tree under --root "
                        "'{}': use --source procfs (or auto) with --root",
                        options.root.string());
    }
    return make_error(ExitCode::failure, "--source bpf: this build has no BPF engine");
  }
  return std::unique_ptr<ThreadSource>(
      std::make_unique<procfs::ProcfsSource>(options.root, keep_files, kept_file_budget));
}

}  // namespace vcpumap
