#include "core/identify.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace vcpumap {
namespace {

std::string_view base_name(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::optional<Hypervisor> hypervisor_of(std::string_view program) {
  if (program.starts_with("qemu-system-") || program == "qemu-kvm" || program == "kvm") {
    return Hypervisor::qemu;
  }
  if (program == "firecracker") return Hypervisor::firecracker;
  if (program == "cloud-hypervisor") return Hypervisor::cloud_hypervisor;
  if (program == "crosvm") return Hypervisor::crosvm;
  return std::nullopt;
}

// Splits a QEMU option value on ',' where ",," stands for a literal comma (QEMU's escaping).
std::vector<std::string> split_qemu_options(std::string_view value) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == ',') {
      if (i + 1 < value.size() && value[i + 1] == ',') {
        parts.back() += ',';
        ++i;
      } else {
        parts.emplace_back();
      }
    } else {
      parts.back() += value[i];
    }
  }
  return parts;
}

// The value of option `option` ("-name" or "--name", "-name=x" too), or nullopt.
std::optional<std::string_view> option_value(const std::vector<std::string>& argv,
                                             std::string_view option) {
  for (std::size_t i = 1; i < argv.size(); ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--")) arg.remove_prefix(1);
    if (arg == option && i + 1 < argv.size()) return argv[i + 1];
    if (arg.starts_with(option) && arg.size() > option.size() && arg[option.size()] == '=') {
      return arg.substr(option.size() + 1);
    }
  }
  return std::nullopt;
}

void read_qemu_name(std::string_view value, VmIdentity& identity) {
  // -name [guest=]NAME[,process=P][,debug-threads=on]: the first item without a key is the name.
  bool first = true;
  for (const auto& part : split_qemu_options(value)) {
    const auto equals = part.find('=');
    if (equals == std::string::npos) {
      if (first) identity.name = part;
    } else {
      const auto key = std::string_view(part).substr(0, equals);
      const auto val = std::string_view(part).substr(equals + 1);
      if (key == "guest") identity.name = val;
      if (key == "debug-threads")
        identity.debug_threads = (val == "on" || val == "yes" || val == "true");
    }
    first = false;
  }
}

// A number written as Proxmox writes VMIDs: digits only, 100 to 999999999.
std::optional<int> parse_vmid(std::string_view text) {
  if (text.empty() || text.size() > 9 || text[0] == '0') return std::nullopt;
  int value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// The path of an API socket option: "PATH" or cloud-hypervisor's "path=PATH[,...]" ("fd=N"
// names no socket).
std::string socket_path(std::string_view value) {
  if (value.starts_with("path=")) {
    value.remove_prefix(5);
    return std::string(value.substr(0, value.find(',')));
  }
  if (value.find('=') != std::string_view::npos) return {};
  return std::string(value);
}

}  // namespace

std::optional<std::pair<std::string, std::string>> split_kubevirt_name(std::string_view name) {
  const auto underscore = name.find('_');
  if (underscore == std::string_view::npos || underscore == 0 || underscore + 1 == name.size()) {
    return std::nullopt;
  }
  const auto ns = name.substr(0, underscore);
  const auto vm = name.substr(underscore + 1);
  // Kubernetes names are lower-case DNS names: the namespace a label, the VM a subdomain.
  const auto dns = [](std::string_view text, bool dots) {
    return text.size() <= 253 && std::all_of(text.begin(), text.end(), [dots](char c) {
             return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    (dots && c == '.');
           });
  };
  if (ns.size() > 63 || !dns(ns, false) || !dns(vm, true)) return std::nullopt;
  return std::pair<std::string, std::string>(ns, vm);
}

std::optional<VmIdentity> identify_vm(const std::vector<std::string>& argv) {
  if (argv.empty()) return std::nullopt;
  const auto hypervisor = hypervisor_of(base_name(argv[0]));
  if (!hypervisor) return std::nullopt;
  VmIdentity identity;
  identity.hypervisor = *hypervisor;
  switch (*hypervisor) {
    case Hypervisor::qemu:
      if (auto name = option_value(argv, "-name")) read_qemu_name(*name, identity);
      if (auto uuid = option_value(argv, "-uuid")) identity.uuid = *uuid;
      // Proxmox VE's QEMU takes the VMID as -id (qemu-server's config_to_command).
      if (auto id = option_value(argv, "-id")) identity.proxmox_vmid = parse_vmid(*id).value_or(-1);
      break;
    case Hypervisor::firecracker:
      // --id names the microVM; without one, its API socket is what tells it apart.
      if (auto id = option_value(argv, "-id")) {
        identity.name = *id;
      } else if (auto socket = option_value(argv, "-api-sock")) {
        identity.name = socket_path(*socket);
      }
      break;
    case Hypervisor::cloud_hypervisor:
      // It takes no VM name; its API socket (--api-socket [path=]PATH) tells VMs apart.
      if (auto socket = option_value(argv, "-api-socket")) identity.name = socket_path(*socket);
      break;
    case Hypervisor::crosvm:
      if (auto name = option_value(argv, "-name")) {
        identity.name = *name;
      } else if (auto socket = option_value(argv, "-socket")) {
        identity.name = socket_path(*socket);  // crosvm run --socket PATH: its control socket
      }
      break;
  }
  return identity;
}

bool may_be_vm_comm(std::string_view comm) {
  // The kernel keeps the first 15 bytes of the program's base name (TASK_COMM_LEN - 1).
  constexpr std::size_t comm_length = 15;
  for (const std::string_view program :
       {"qemu-kvm", "kvm", "firecracker", "cloud-hypervisor", "crosvm"}) {
    if (comm == program.substr(0, comm_length)) return true;
  }
  return comm.starts_with("qemu-system-");
}

std::optional<int> parse_indexed_name(std::string_view name, std::string_view prefix,
                                      std::string_view suffix) {
  if (!name.starts_with(prefix) || !name.ends_with(suffix)) return std::nullopt;
  if (name.size() < prefix.size() + suffix.size() + 1) return std::nullopt;
  const auto digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  // Exactly the digits a hypervisor prints: no sign, no leading zero, no stray bytes.
  if (digits.size() > 6 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  int value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

ThreadClass classify_thread(Hypervisor hypervisor, std::string_view name, int tid, int pid) {
  ThreadClass result;
  // vhost workers are named after the process they serve (threads of it on Linux >= 6.4).
  if (parse_indexed_name(name, "vhost-") == pid) {
    result.role = ThreadRole::vhost;
    return result;
  }
  std::optional<int> vcpu;
  switch (hypervisor) {
    case Hypervisor::qemu: {
      // QEMU names vCPU threads "CPU %d/%s" with the accelerator's name (cpus.c).
      static constexpr std::array<std::string_view, 5> kAccelerators = {"/KVM", "/TCG", "/HVF",
                                                                        "/WHPX", "/NVMM"};
      for (const auto accelerator : kAccelerators) {
        if ((vcpu = parse_indexed_name(name, "CPU ", accelerator))) break;
      }
      if (!vcpu && name.starts_with("IO ") && name.size() > 3) {
        if (name == "IO mon_iothread") {
          result.role = ThreadRole::emulator_monitor;
        } else {
          result.role = ThreadRole::iothread;
          result.iothread = std::string(name.substr(3));
        }
        return result;
      }
      break;
    }
    case Hypervisor::firecracker:
      vcpu = parse_indexed_name(name, "fc_vcpu ");
      break;
    case Hypervisor::cloud_hypervisor:
      vcpu = parse_indexed_name(name, "vcpu");
      break;
    case Hypervisor::crosvm:
      vcpu = parse_indexed_name(name, "crosvm_vcpu");
      break;
  }
  if (vcpu) {
    result.role = ThreadRole::vcpu;
    result.vcpu = *vcpu;
  } else if (tid == pid) {
    result.role = ThreadRole::emulator_main;
  }
  return result;
}

}  // namespace vcpumap
