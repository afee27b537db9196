#include "views/prometheus_view.h"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "views/delay_view.h"

namespace vcpumap::views {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Length of the valid UTF-8 sequence at text[i], or 0 when the bytes there are not one
// (overlong forms, surrogates and values past U+10FFFF included, as Go's utf8.Valid rejects them).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

// A label set rendered once, escaped, as it goes between the braces (`vm="a",uuid=""`): a VM's
// labels are rendered once and shared by its threads' series, not escaped again for each.
struct LabelText {
  std::string text;
};

void append_label(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += ',';
  out += name;
  out += "=\"";
  out += escape_label_value(value);
  out += '"';
}

LabelText render_labels(const Labels& labels) {
  LabelText out;
  for (const auto& [name, value] : labels) append_label(out.text, name, value);
  return out;
}

LabelText with(const LabelText& labels, std::string_view name, std::string_view value) {
  LabelText out = labels;
  append_label(out.text, name, value);
  return out;
}

// A family's HELP and TYPE lines and its samples, rendered in one block as the format requires.
// Its samples go into a buffer of its own, or one a MetricsRenderer keeps between scrapes.
class Family {
 public:
  Family(std::string name, std::string_view type, std::string_view help,
         SampleBuffers* buffers = nullptr)
      : name_(std::move(name)), samples_(buffers ? buffers->next() : own_) {
    header_ = fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, help, name_, type);
  }
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  template <typename Value>
  void add(const LabelText& labels, Value value) {
    samples_ += name_;
    if (!labels.text.empty()) {
      samples_ += '{';
      samples_ += labels.text;
      samples_ += '}';
    }
    // Into a stack buffer first: fmt's iterator into a std::string costs more than the number.
    char number[64];
    const auto end = fmt::format_to_n(number, sizeof number, FMT_COMPILE(" {}\n"), value);
    samples_.append(number, std::min(end.size, sizeof number));
  }

  template <typename Value>
  void add(const Labels& labels, Value value) {
    add(render_labels(labels), value);
  }

  std::size_t size() const { return header_.size() + samples_.size(); }
  void render_to(std::string& out) const {
    out += header_;
    out += samples_;
  }

 private:
  std::string name_;
  std::string header_;
  std::string own_;
  std::string& samples_;
};

Labels with(Labels labels, std::string name, std::string value) {
  labels.emplace_back(std::move(name), std::move(value));
  return labels;
}

std::string number_or_empty(int value) {
  return value >= 0 ? std::to_string(value) : "";
}

// CPU time in seconds: schedstat's nanoseconds, else stat's ticks over USER_HZ (coarser, but
// never missing when schedstat is), so cpu_seconds is there for every thread.
double seconds_on_cpu(const ThreadFacts& facts, long ticks_per_second) {
  if (facts.cpu_time_ns) return static_cast<double>(*facts.cpu_time_ns) / 1e9;
  return static_cast<double>(facts.cpu_ticks().value_or(0)) /
         static_cast<double>(ticks_per_second > 0 ? ticks_per_second : 100);
}

// The families of one kind of thread (vCPU or I/O thread), one series per thread.
struct ThreadFamilies {
  Family cpu_seconds, run_delay, migrations, last_cpu, affinity_cpus, affinity_info;

  ThreadFamilies(const std::string& prefix, std::string_view what, SampleBuffers& buffers)
      : cpu_seconds(prefix + "_cpu_seconds_total", "counter",
                    fmt::format("Time the {} thread ran on a host CPU, in seconds (schedstat; "
                                "stat's utime+stime when schedstat is missing).",
                                what),
                    &buffers),
        run_delay(prefix + "_run_delay_seconds_total", "counter",
                  fmt::format("Time the {} thread waited on a run queue for a host CPU, in "
                              "seconds (schedstat; absent when the kernel has no schedstats).",
                              what),
                  &buffers),
        migrations(prefix + "_migrations_total", "counter",
                   fmt::format("Moves of the {} thread from one host CPU to another "
                               "(se.nr_migrations; absent without SCHED_DEBUG).",
                               what),
                   &buffers),
        last_cpu(prefix + "_last_cpu", "gauge",
                 fmt::format("The host CPU the {} thread last ran on (stat field 39).", what),
                 &buffers),
        affinity_cpus(prefix + "_affinity_cpus", "gauge",
                      fmt::format("Number of host CPUs the {} thread may run on.", what), &buffers),
        affinity_info(prefix + "_affinity_info", "gauge",
                      fmt::format("The {} thread's affinity as a CPU list in the cpus label; "
                                  "always 1.",
                                  what),
                      &buffers) {}

  void add(const LabelText& labels, const ThreadFacts& facts, long ticks_per_second,
           bool with_affinity_info) {
    cpu_seconds.add(labels, seconds_on_cpu(facts, ticks_per_second));
    if (facts.run_delay_ns) run_delay.add(labels, static_cast<double>(*facts.run_delay_ns) / 1e9);
    if (facts.migrations) migrations.add(labels, *facts.migrations);
    if (facts.last_cpu >= 0) last_cpu.add(labels, facts.last_cpu);
    affinity_cpus.add(labels, facts.affinity.count());
    if (with_affinity_info) affinity_info.add(with(labels, "cpus", facts.affinity.to_list()), 1);
  }

  // Appends the families to render, in order.
  void list(std::vector<const Family*>& order, bool with_affinity_info) const {
    order.insert(order.end(), {&cpu_seconds, &run_delay, &migrations, &last_cpu, &affinity_cpus});
    if (with_affinity_info) order.push_back(&affinity_info);
  }
};

// The labels that name a VM on every per-VM series: vm and uuid, the pid when two VMs would
// otherwise look the same, libvirt's id and nova's names when libvirt manages the VM, Proxmox's
// VMID and KubeVirt's namespace, VM and pod when those platforms run it.
Labels vm_labels(const Vm& vm, bool ambiguous) {
  Labels labels = {{"vm", vm.display_name()}, {"uuid", vm.uuid}};
  if (ambiguous) labels.emplace_back("pid", std::to_string(vm.pid));
  if (vm.libvirt) {
    if (vm.libvirt->id >= 0) labels.emplace_back("libvirt_id", std::to_string(vm.libvirt->id));
    if (vm.libvirt->nova) {
      labels.emplace_back("nova_name", vm.libvirt->nova->name);
      labels.emplace_back("nova_flavor", vm.libvirt->nova->flavor);
      labels.emplace_back("nova_project", vm.libvirt->nova->project);
    }
  }
  if (vm.proxmox) labels.emplace_back("proxmox_vmid", std::to_string(vm.proxmox->vmid));
  if (vm.kubevirt) {
    labels.emplace_back("namespace", vm.kubevirt->ns);
    labels.emplace_back("kubevirt_vm", vm.kubevirt->name);
    labels.emplace_back("pod_uid", vm.kubevirt->pod_uid);
  }
  return labels;
}

// True when the vCPU last ran on a CPU its pinning excludes: the kernel's affinity, and
// libvirt's configured vcpupin when there is one (the two differ when someone re-pinned by hand),
// a KubeVirt pod's libvirt's included.
bool off_pinned_cpus(const Vm& vm, const VmThread& vcpu) {
  const int cpu = vcpu.facts.last_cpu;
  if (cpu < 0) return false;
  if (!vcpu.facts.affinity.empty() && !vcpu.facts.affinity.contains(cpu)) return true;
  if (vm.libvirt && vcpu.vcpu >= 0 &&
      static_cast<std::size_t>(vcpu.vcpu) < vm.libvirt->vcpu_pins.size()) {
    const auto& pin = vm.libvirt->vcpu_pins[static_cast<std::size_t>(vcpu.vcpu)];
    if (!pin.empty() && !pin.contains(cpu)) return true;
  }
  if (vm.kubevirt) {  // the pod's libvirt's vcpupin, from its status file
    const auto pin = vm.kubevirt->vcpu_pins.find(vcpu.vcpu);
    if (pin != vm.kubevirt->vcpu_pins.end() && !pin->second.contains(cpu)) return true;
  }
  return false;
}

void render_host(const Topology& topology, std::string& out) {
  Family cpu_info("vcpumap_host_cpu_info", "gauge",
                  "A host CPU and where it sits: core, package and NUMA node (empty when "
                  "unknown); always 1.");
  Family cpu_online("vcpumap_host_cpu_online", "gauge", "1 when the host CPU is online.");
  Family cpu_isolated("vcpumap_host_cpu_isolated", "gauge",
                      "1 when the host CPU is isolated from the scheduler (isolcpus).");
  for (const auto& cpu : topology.cpus) {
    const std::string number = std::to_string(cpu.cpu);
    cpu_info.add({{"cpu", number},
                  {"core", number_or_empty(cpu.core)},
                  {"package", number_or_empty(cpu.package)},
                  {"node", number_or_empty(cpu.node)}},
                 1);
    cpu_online.add({{"cpu", number}}, cpu.online ? 1 : 0);
    cpu_isolated.add({{"cpu", number}}, cpu.isolated ? 1 : 0);
  }
  Family host_info("vcpumap_host_info", "gauge",
                   "The host's CPU model and, when the host is itself a VM, its hypervisor "
                   "vendor; always 1.");
  host_info.add(
      {{"model_name", topology.model_name}, {"hypervisor_vendor", topology.hypervisor_vendor}}, 1);
  for (const auto* family : {&cpu_info, &cpu_online, &cpu_isolated, &host_info}) {
    family->render_to(out);
  }
}

// Counters summed over a set of threads; a sum is absent (nullopt) when one thread lacks it.
struct ThreadSums {
  double seconds = 0;
  std::optional<double> run_delay;
  std::optional<std::uint64_t> migrations;
};

ThreadSums sum_threads(const std::vector<const VmThread*>& threads, long ticks) {
  ThreadSums sums;
  if (threads.empty()) return sums;
  sums.run_delay = 0.0;
  sums.migrations = 0;
  for (const auto* thread : threads) {
    sums.seconds += seconds_on_cpu(thread->facts, ticks);
    if (sums.run_delay && thread->facts.run_delay_ns) {
      *sums.run_delay += static_cast<double>(*thread->facts.run_delay_ns) / 1e9;
    } else {
      sums.run_delay.reset();
    }
    if (sums.migrations && thread->facts.migrations) {
      *sums.migrations += *thread->facts.migrations;
    } else {
      sums.migrations.reset();
    }
  }
  return sums;
}

// The per-VM sums over a VM's vCPU threads (the vm collector): what a fleet keeps when it can't
// keep a series per vCPU. A sum is absent when one vCPU lacks the figure, as for the emulator.
struct VmFamilies {
  explicit VmFamilies(SampleBuffers& buffers)
      : cpu_seconds("vcpumap_vm_cpu_seconds_total", "counter",
                    "Time the VM's vCPU threads ran on host CPUs, summed, in seconds.", &buffers),
        run_delay("vcpumap_vm_run_delay_seconds_total", "counter",
                  "Time the VM's vCPU threads waited on run queues, summed, in seconds (absent "
                  "unless every vCPU has schedstat).",
                  &buffers),
        migrations("vcpumap_vm_migrations_total", "counter",
                   "Moves of the VM's vCPU threads between host CPUs, summed (absent unless "
                   "every vCPU has se.nr_migrations).",
                   &buffers),
        off_pinned("vcpumap_vm_vcpus_off_pinned_cpus", "gauge",
                   "vCPUs of the VM that last ran outside their affinity or libvirt's vcpupin.",
                   &buffers) {}

  Family cpu_seconds, run_delay, migrations, off_pinned;

  void add(const LabelText& labels, const Vm& vm, const std::vector<const VmThread*>& vcpus,
           long ticks) {
    const ThreadSums sums = sum_threads(vcpus, ticks);
    std::size_t off = 0;
    for (const auto* thread : vcpus) off += off_pinned_cpus(vm, *thread) ? 1 : 0;
    cpu_seconds.add(labels, sums.seconds);
    if (sums.run_delay) run_delay.add(labels, *sums.run_delay);
    if (sums.migrations) migrations.add(labels, *sums.migrations);
    off_pinned.add(labels, off);
  }

  // Appends the families to render, in order.
  void list(std::vector<const Family*>& order) const {
    order.insert(order.end(), {&cpu_seconds, &run_delay, &migrations, &off_pinned});
  }
};

// `room_after`: the bytes that will follow, reserved with the rest.
void render_vms(const Snapshot& snapshot, const Collectors& collectors, SampleBuffers& buffers,
                std::size_t room_after, std::string& out) {
  Family vms("vcpumap_vms", "gauge", "VMs found on the host, inactive libvirt domains included.",
             &buffers);
  vms.add(LabelText{}, snapshot.vms.size());
  Family vm_info("vcpumap_vm_info", "gauge",
                 "A VM: its pid, hypervisor, libvirt state and where the vCPU-to-thread mapping "
                 "came from; always 1.",
                 &buffers);
  Family vm_vcpus("vcpumap_vm_vcpus", "gauge", "vCPU threads found in the VM's process.", &buffers);
  ThreadFamilies vcpu("vcpumap_vcpu", "vCPU", buffers);
  Family off_pinned("vcpumap_vcpu_off_pinned_cpus", "gauge",
                    "1 when the vCPU last ran on a host CPU outside its affinity or outside "
                    "libvirt's configured vcpupin, else 0.",
                    &buffers);
  ThreadFamilies iothread("vcpumap_iothread", "I/O", buffers);
  VmFamilies per_vm(buffers);
  Family emulator_seconds("vcpumap_emulator_cpu_seconds_total", "counter",
                          "Time the VM's emulator threads that exist now ran on a host CPU, in "
                          "seconds (threads that exited drop out of the sum).",
                          &buffers);
  Family emulator_delay("vcpumap_emulator_run_delay_seconds_total", "counter",
                        "Time the VM's emulator threads that exist now waited on a run queue, "
                        "in seconds (absent without schedstats).",
                        &buffers);
  Family emulator_migrations("vcpumap_emulator_migrations_total", "counter",
                             "Moves between host CPUs of the VM's emulator threads that exist "
                             "now (absent without SCHED_DEBUG).",
                             &buffers);
  Family emulator_threads("vcpumap_emulator_threads", "gauge",
                          "Emulator threads of the VM: every thread that is not a vCPU, an I/O "
                          "thread or vhost.",
                          &buffers);
  Family emulator_last_cpu("vcpumap_emulator_last_cpu", "gauge",
                           "The host CPU the VM's main (emulator) thread last ran on.", &buffers);
  Family emulator_cpus("vcpumap_emulator_affinity_cpus", "gauge",
                       "Number of host CPUs the VM's emulator threads may run on (the union of "
                       "their affinities, as virsh emulatorpin shows).",
                       &buffers);
  Family emulator_info("vcpumap_emulator_affinity_info", "gauge",
                       "The emulator threads' affinity as a CPU list in the cpus label; always 1.",
                       &buffers);

  // Two VMs with the same name and UUID (hand-started guests) get the pid as a label too, so no
  // two series collide.
  std::map<std::pair<std::string, std::string>, int> seen;
  for (const auto& vm : snapshot.vms) ++seen[{vm.display_name(), vm.uuid}];

  const long ticks = snapshot.clock_ticks_per_second;
  for (const auto& vm : snapshot.vms) {
    const Labels names = vm_labels(vm, seen[{vm.display_name(), vm.uuid}] > 1);
    const LabelText labels = render_labels(names);
    Labels info = with(names, "hypervisor", std::string(to_string(vm.hypervisor)));
    if (names.size() == 2 || names[2].first != "pid") {
      info.emplace_back("pid", vm.pid > 0 ? std::to_string(vm.pid) : "");
    }
    info.emplace_back("state", vm.libvirt ? vm.libvirt->state : "running");
    info.emplace_back("vcpu_source", std::string(to_string(vm.vcpu_source)));
    vm_info.add(info, 1);
    if (vm.pid <= 0) continue;  // an inactive libvirt domain has no threads to count

    const auto vcpus = vm.vcpus();
    vm_vcpus.add(labels, vcpus.size());
    if (collectors.vm) per_vm.add(labels, vm, vcpus, ticks);
    if (collectors.vcpu) {
      for (const auto* thread : vcpus) {
        const LabelText thread_labels = with(labels, "vcpu", std::to_string(thread->vcpu));
        vcpu.add(thread_labels, thread->facts, ticks, collectors.affinity);
        off_pinned.add(thread_labels, off_pinned_cpus(vm, *thread) ? 1 : 0);
      }
    }
    if (collectors.iothread) {
      for (const auto* thread : vm.threads_with(ThreadRole::iothread)) {
        iothread.add(with(labels, "iothread", thread->iothread), thread->facts, ticks,
                     collectors.affinity);
      }
    }
    if (!collectors.emulator) continue;

    const auto emulators = vm.emulator_threads();
    for (const auto* thread : emulators) {
      if (thread->role == ThreadRole::emulator_main && thread->facts.last_cpu >= 0) {
        emulator_last_cpu.add(labels, thread->facts.last_cpu);
      }
    }
    emulator_threads.add(labels, emulators.size());
    if (emulators.empty()) continue;
    const ThreadSums sums = sum_threads(emulators, ticks);
    emulator_seconds.add(labels, sums.seconds);
    if (sums.run_delay) emulator_delay.add(labels, *sums.run_delay);
    if (sums.migrations) emulator_migrations.add(labels, *sums.migrations);
    const CpuSet affinity = vm.emulator_affinity();
    emulator_cpus.add(labels, affinity.count());
    if (collectors.affinity) emulator_info.add(with(labels, "cpus", affinity.to_list()), 1);
  }

  // A collector switched off leaves its families out whole, HELP and TYPE lines too.
  std::vector<const Family*> order = {&vms, &vm_info, &vm_vcpus};
  if (collectors.vm) per_vm.list(order);
  if (collectors.vcpu) {
    vcpu.list(order, collectors.affinity);
    order.push_back(&off_pinned);
  }
  if (collectors.emulator) {
    order.insert(order.end(), {&emulator_seconds, &emulator_delay, &emulator_migrations,
                               &emulator_threads, &emulator_last_cpu, &emulator_cpus});
    if (collectors.affinity) order.push_back(&emulator_info);
  }
  if (collectors.iothread) iothread.list(order, collectors.affinity);
  // One allocation for the whole text (several MB at fleet scale), not a doubling per family,
  // with room for the exporter's own metrics and what the caller adds after it.
  std::size_t size = out.size() + 4096 + room_after;
  for (const auto* family : order) size += family->size();
  out.reserve(size);
  for (const auto* family : order) family->render_to(out);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size();) {
    const char c = value[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      const std::size_t length = utf8_sequence_length(value, i);
      if (length == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD, as the JSON views do
        ++i;
        continue;
      }
      out.append(value.substr(i, length));
      i += length;
      continue;
    }
    ++i;
  }
  return out;
}

std::string render_exporter_metrics(const ExporterStats& stats) {
  Family duration("vcpumap_scrape_duration_seconds", "gauge",
                  "How long the snapshot behind this scrape took to read, in seconds.");
  duration.add(LabelText{}, stats.snapshot_seconds);
  Family success("vcpumap_scrape_success", "gauge",
                 "1 when the snapshot behind this scrape was read, 0 when it failed.");
  success.add(LabelText{}, stats.success ? 1 : 0);
  Family errors("vcpumap_scrape_errors_total", "counter",
                "Snapshots that failed since the exporter started.");
  errors.add(LabelText{}, stats.errors_total);
  Family snapshots("vcpumap_snapshots_total", "counter",
                   "Snapshots taken since the exporter started: scrapes within the cache "
                   "interval share one.");
  snapshots.add(LabelText{}, stats.snapshots_total);
  Family build("vcpumap_build_info", "gauge", "The vcpumap version serving these metrics.");
  build.add({{"version", stats.version}}, 1);
  std::string out;
  for (const auto* family : {&duration, &success, &errors, &snapshots, &build}) {
    family->render_to(out);
  }
  return out;
}

// libvirt's health, when it was asked: whether it answers, when it last did, and how many calls
// this process made (the exporter makes none per scrape: it follows libvirt's events).
void render_libvirt(const LibvirtHealth& health, std::string& out) {
  Family up("vcpumap_libvirt_up", "gauge",
            "1 when libvirt is connected and answering, 0 when it is away (VMs it knew keep "
            "their last labels).");
  up.add(LabelText{}, health.up ? 1 : 0);
  up.render_to(out);
  if (health.last_success) {
    Family last("vcpumap_libvirt_last_success_timestamp_seconds", "gauge",
                "When libvirt last answered a full listing, in seconds since the epoch.");
    last.add(LabelText{},
             std::chrono::duration<double>(health.last_success->time_since_epoch()).count());
    last.render_to(out);
  }
  Family calls("vcpumap_libvirt_calls_total", "counter",
               "Calls made to libvirt since the exporter started: they follow libvirt's events, "
               "not scrapes.");
  calls.add(LabelText{}, health.calls);
  calls.render_to(out);
}

std::string& SampleBuffers::next() {
  if (used_ == buffers_.size()) buffers_.emplace_back();
  std::string& buffer = buffers_[used_++];
  buffer.clear();
  return buffer;
}

std::string MetricsRenderer::render(const Snapshot& snapshot, const ExporterStats& stats,
                                    const Collectors& collectors, std::string_view extra) {
  buffers_.rewind();
  std::string out;
  render_host(snapshot.topology, out);
  render_vms(snapshot, collectors, buffers_, extra.size(), out);
  if (snapshot.libvirt_health) render_libvirt(*snapshot.libvirt_health, out);
  out += render_exporter_metrics(stats);
  out += extra;
  return out;
}

std::string render_metrics(const Snapshot& snapshot, const ExporterStats& stats,
                           const Collectors& collectors) {
  return MetricsRenderer().render(snapshot, stats, collectors);
}

namespace {

// One vCPU's culprits as series of `family`: one per (kind, label), the largest
// kWaitedBehindCulprits first, the rest and `other` summed in culprit "other".
void add_culprits(Family& family, const Labels& labels, const std::vector<Culprit>& list) {
  // One series per label: a VM's emulator threads are one culprit, as virsh's emulatorpin.
  std::vector<std::pair<std::pair<std::string, std::string>, std::uint64_t>> culprits;
  for (const auto& culprit : list) {
    const std::string name = culprit_label(culprit);
    std::pair<std::string, std::string> key{std::string(to_string(culprit.kind)), name};
    auto same = std::find_if(culprits.begin(), culprits.end(),
                             [&](const auto& entry) { return entry.first == key; });
    if (same == culprits.end()) {
      culprits.push_back({std::move(key), culprit.ns});
    } else {
      same->second += culprit.ns;
    }
  }
  std::stable_sort(culprits.begin(), culprits.end(), [](const auto& a, const auto& b) {
    return a.first.first != "other" && (b.first.first == "other" || a.second > b.second);
  });
  std::uint64_t other = 0;
  for (std::size_t i = 0; i < culprits.size(); ++i) {
    const auto& [key, ns] = culprits[i];
    if (i >= kWaitedBehindCulprits || key.first == "other") {
      other += ns;
      continue;
    }
    family.add(with(with(labels, "culprit_kind", key.first), "culprit", key.second),
               static_cast<double>(ns) / 1e9);
  }
  family.add(with(with(labels, "culprit_kind", "other"), "culprit", "other"),
             static_cast<double>(other) / 1e9);
}

}  // namespace

std::string render_waited_behind(const DelayReport& report) {
  Family behind("vcpumap_vcpu_waited_behind_seconds_total", "counter",
                "Time the vCPU waited on a run queue while this culprit ran on the CPU where it "
                "waited, in seconds since the exporter started (BPF on the sched tracepoints): "
                "the 5 largest culprits per vCPU, the rest and what could not be attributed in "
                "culprit \"other\".");
  Family beside("vcpumap_vcpu_ran_beside_seconds_total", "counter",
                "Time the vCPU ran while another VM's thread ran on an SMT sibling of its CPU, "
                "sharing its core, in seconds since the exporter started (BPF on the sched "
                "tracepoints): the 5 largest per vCPU, the rest in culprit \"other\". Absent "
                "on hosts without SMT.");
  for (const auto& vm : report.vms) {
    for (const auto& vcpu : vm.vcpus) {
      const Labels labels = {
          {"vm", vm.name}, {"uuid", vm.uuid}, {"vcpu", std::to_string(vcpu.vcpu)}};
      add_culprits(behind, labels, vcpu.behind);
      if (vcpu.ran_beside) add_culprits(beside, labels, *vcpu.ran_beside);
    }
  }
  std::string out;
  behind.render_to(out);
  if (report.ran_beside_why.empty()) beside.render_to(out);
  return out;
}

}  // namespace vcpumap::views
