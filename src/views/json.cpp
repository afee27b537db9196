#include "views/json.h"

#include <fmt/format.h>

namespace vcpumap::views {
namespace {

using nlohmann::json;

json optional_json(const std::optional<std::uint64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

json cpus_json(const CpuSet& set) {
  return set.cpus();
}

json string_or_null(const std::string& text) {
  return text.empty() ? json(nullptr) : json(text);
}

template <typename T>
json optional_value(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

// Proxmox VE's VMID and what its qemu-server config says; the config's fields null when the file
// could not be read or does not set them.
json proxmox_json(const ProxmoxVm& proxmox) {
  json out = json::object();
  out["vmid"] = proxmox.vmid;
  const ProxmoxConfig none;
  const auto& config = proxmox.config ? *proxmox.config : none;
  out["config"] = proxmox.config.has_value();
  out["name"] = string_or_null(config.name);
  out["cores"] = optional_value(config.cores);
  out["sockets"] = optional_value(config.sockets);
  out["vcpus"] = optional_value(config.vcpus);
  out["affinity"] = config.affinity ? json(config.affinity->to_list()) : json(nullptr);
  out["numa"] = optional_value(config.numa);
  out["cpuunits"] = optional_value(config.cpuunits);
  out["cpulimit"] = optional_value(config.cpulimit);
  return out;
}

}  // namespace

std::string dump_json(const json& document, bool pretty) {
  return document.dump(pretty ? 2 : -1, ' ', false, json::error_handler_t::replace);
}

json host_json(const Topology& topology) {
  return {{"cpus_online", topology.online.count()},
          {"online", topology.online.to_list()},
          {"packages", topology.packages},
          {"cores", topology.cores},
          {"threads_per_core", topology.threads_per_core},
          {"numa_nodes", topology.nodes.size()},
          {"hypervisor_vendor", string_or_null(topology.hypervisor_vendor)},
          {"model_name", string_or_null(topology.model_name)}};
}

json thread_json(const VmThread& thread) {
  // Assigned key by key, not from a braced list: nlohmann builds a braced list through a
  // temporary array per pair and copies it, which cost `list --json` more than reading /proc.
  const auto& facts = thread.facts;
  json out = json::object();
  out["tid"] = thread.tid;
  out["name"] = thread.name;
  out["role"] = to_string(thread.role);
  out["cpu"] = facts.last_cpu;
  out["state"] = std::string(1, facts.state);
  out["affinity"] = cpus_json(facts.affinity);
  out["cpu_time_ticks"] = optional_json(facts.cpu_ticks());
  out["cpu_time_ns"] = optional_json(facts.cpu_time_ns);
  out["run_delay_ns"] = optional_json(facts.run_delay_ns);
  out["timeslices"] = optional_json(facts.timeslices);
  out["migrations"] = optional_json(facts.migrations);
  out["voluntary_switches"] = optional_json(facts.voluntary_switches);
  out["involuntary_switches"] = optional_json(facts.involuntary_switches);
  out["start_time_ticks"] = facts.start_time_ticks;
  if (thread.role == ThreadRole::vcpu) out["vcpu"] = thread.vcpu;
  if (thread.role == ThreadRole::iothread) out["id"] = thread.iothread;
  return out;
}

json vm_json(const Vm& vm) {
  json vcpus = json::array();
  for (const auto* thread : vm.vcpus()) vcpus.push_back(thread_json(*thread));
  json emulator_threads = json::array();
  for (const auto* thread : vm.emulator_threads()) emulator_threads.push_back(thread_json(*thread));
  json iothreads = json::array();
  for (const auto* thread : vm.threads_with(ThreadRole::iothread)) {
    iothreads.push_back(thread_json(*thread));
  }
  json vhost = json::array();
  for (const auto* thread : vm.threads_with(ThreadRole::vhost))
    vhost.push_back(thread_json(*thread));
  json nova = nullptr;
  if (vm.libvirt && vm.libvirt->nova) {
    const auto& instance = *vm.libvirt->nova;
    nova = {{"name", instance.name},
            {"flavor", instance.flavor},
            {"project", instance.project},
            {"cpu_policy", string_or_null(instance.cpu_policy)},
            {"emulator_threads_policy", string_or_null(instance.emulator_threads_policy)}};
  }
  json kubevirt = nullptr;
  if (vm.kubevirt) {
    const auto& pod = *vm.kubevirt;
    // The pod's configured pinning, one entry per vCPU up to the last pinned (null: not pinned).
    json vcpupin = json::array();
    for (const auto& [vcpu, cpus] : pod.vcpu_pins) {
      while (vcpupin.size() < static_cast<std::size_t>(vcpu)) vcpupin.push_back(nullptr);
      vcpupin.push_back(cpus_json(cpus));
    }
    const bool pod_status = !pod.status_file.empty();
    kubevirt = {{"namespace", pod.ns},
                {"name", pod.name},
                {"pod_uid", pod.pod_uid},
                {"status_file", string_or_null(pod.status_file)},
                {"vcpu_source", std::string(to_string(vm.vcpu_source))},
                {"vcpupin", pod_status ? std::move(vcpupin) : json(nullptr)},
                {"emulatorpin", pod.emulator_pin ? cpus_json(*pod.emulator_pin) : json(nullptr)}};
  }
  const bool has_id = vm.libvirt && vm.libvirt->id >= 0;
  // libvirt's configured pinning (virsh vcpupin), one CPU list per vCPU; null without libvirt.
  json configured = nullptr;
  if (vm.libvirt) {
    configured = json::array();
    for (const auto& pin : vm.libvirt->vcpu_pins) configured.push_back(cpus_json(pin));
  }
  return {
      {"pid", vm.pid > 0 ? json(vm.pid) : json(nullptr)},
      {"name", string_or_null(vm.name)},
      {"libvirt_id", has_id ? json(vm.libvirt->id) : json(nullptr)},
      {"state", vm.libvirt ? vm.libvirt->state : std::string("running")},
      {"libvirt", vm.libvirt.has_value()},
      {"nova", std::move(nova)},
      {"proxmox", vm.proxmox ? proxmox_json(*vm.proxmox) : json(nullptr)},
      {"kubevirt", std::move(kubevirt)},
      {"uuid", string_or_null(vm.uuid)},
      {"hypervisor", std::string(to_string(vm.hypervisor))},
      {"vcpu_source", std::string(to_string(vm.vcpu_source))},
      {"vcpus", std::move(vcpus)},
      {"libvirt_vcpupin", std::move(configured)},
      {"emulator",
       {{"affinity", cpus_json(vm.emulator_affinity())}, {"threads", std::move(emulator_threads)}}},
      {"iothreads", std::move(iothreads)},
      {"vhost", std::move(vhost)},
      {"notes", vm.notes}};
}

namespace {

// The top-level document without its VMs, and the notes of the snapshot and of every VM.
json snapshot_head_json(const Snapshot& snapshot) {
  json notes = snapshot.notes;
  for (const auto& vm : snapshot.vms) {
    for (const auto& note : vm.notes) notes.push_back(note);
  }
  const auto wall_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(snapshot.wall.time_since_epoch())
          .count();
  return {{"host", host_json(snapshot.topology)},
          {"vms", json::array()},
          {"notes", std::move(notes)},
          {"source", snapshot.source},
          {"time_unix_ms", wall_ms}};
}

}  // namespace

json snapshot_json(const Snapshot& snapshot) {
  auto document = snapshot_head_json(snapshot);
  auto& vms = document["vms"];
  for (const auto& vm : snapshot.vms) vms.push_back(vm_json(vm));
  return document;
}

void write_snapshot_json(const Snapshot& snapshot,
                         const std::function<void(std::string_view)>& sink) {
  // The head is dumped with an empty "vms" array, which comes last (nlohmann sorts keys), and
  // each VM is dumped into the gap before its closing "]}".
  const auto head = dump_json(snapshot_head_json(snapshot));
  constexpr std::string_view kEmptyVmsEnd = "[]}";
  sink(std::string_view(head).substr(0, head.size() - kEmptyVmsEnd.size() + 1));
  for (std::size_t i = 0; i < snapshot.vms.size(); ++i) {
    if (i > 0) sink(",");
    sink(dump_json(vm_json(snapshot.vms[i])));
  }
  sink("]}");
}

json threads_json(const Vm& vm, const Snapshot& snapshot) {
  json threads = json::array();
  for (const auto& thread : vm.threads) threads.push_back(thread_json(thread));
  return {{"vm",
           {{"pid", vm.pid}, {"name", string_or_null(vm.name)}, {"uuid", string_or_null(vm.uuid)}}},
          {"threads", std::move(threads)},
          {"source", snapshot.source}};
}

}  // namespace vcpumap::views
