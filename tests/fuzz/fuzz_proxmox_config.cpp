// Proxmox VE's qemu-server config, ROOT/etc/pve/qemu-server/VMID.conf
// (proxmox::parse_qemu_server_config): "key: value" lines, '#' comments, [sections].
#include "fuzz.h"
#include "sources/platform/proxmox.h"

using namespace vcpumap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto config = proxmox::parse_qemu_server_config(text);
  if (!config) {
    // An error names the line it stopped at.
    FUZZ_CHECK(config.error().message.rfind("line ", 0) == 0);
    FUZZ_CHECK(config.error().exit_code == ExitCode::bad_input);
    return 0;
  }
  // Values are text of one line of the input, counts within qm.conf(5)'s bounds.
  FUZZ_CHECK(config->name.find('\n') == std::string::npos);
  FUZZ_CHECK(text.find(config->name) != std::string_view::npos);
  FUZZ_CHECK(text.find(config->affinity_text) != std::string_view::npos);
  FUZZ_CHECK(!config->affinity || !config->affinity->empty());
  for (const auto& count : {config->cores, config->sockets, config->vcpus}) {
    FUZZ_CHECK(!count || (*count >= 1 && *count <= 65536));
  }
  FUZZ_CHECK(!config->cpuunits || (*config->cpuunits >= 1 && *config->cpuunits <= 262144));
  FUZZ_CHECK(!config->cpulimit || (*config->cpulimit >= 0 && *config->cpulimit <= 128));
  FUZZ_CHECK(config->vcpu_count() >= 1);
  return 0;
}
