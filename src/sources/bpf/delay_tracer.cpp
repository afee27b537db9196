#include "sources/bpf/delay_tracer.h"

#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>

#include "sources/bpf/loaders.h"

namespace vcpumap::bpf {

struct DelayTracer::Programs {
  Programs() = default;
  Programs(const Programs&) = delete;
  Programs& operator=(const Programs&) = delete;
  ~Programs() { vcpumap_destroy_delay_programs(&loaded); }
  vcpumap_delay_programs loaded{};
};

DelayTracer::DelayTracer(std::unique_ptr<Programs> programs) : programs_(std::move(programs)) {}

DelayTracer::~DelayTracer() = default;

Result<std::unique_ptr<DelayTracer>> DelayTracer::open() {
  auto programs = std::make_unique<Programs>();
  if (const int error = vcpumap_load_delay_programs(&programs->loaded); error != 0) {
    return bpf_load_error("tp_btf sched tracepoints", -error,
                          "it needs tp_btf programs (kernel 5.5 or later with BTF)");
  }
  return std::unique_ptr<DelayTracer>(new DelayTracer(std::move(programs)));
}

Status DelayTracer::watch(std::span<const int> vcpus, std::span<const int> others) {
  const auto add = [this](std::span<const int> tids, std::uint32_t role) -> Status {
    for (const int tid : tids) {
      if (bpf_map_update_elem(programs_->loaded.watched, &tid, &role, BPF_ANY) != 0) {
        return make_error(ExitCode::failure, "BPF delay: cannot watch thread {}: {}", tid,
                          std::strerror(errno));
      }
    }
    return Ok{};
  };
  // Others first: a tid in both lists (it should not be) ends up a vCPU.
  if (auto added = add(others, VCPUMAP_WATCH_OTHER); !added) return added;
  return add(vcpus, VCPUMAP_WATCH_VCPU);
}

Status DelayTracer::attach() {
  if (const int error = vcpumap_attach_delay_programs(&programs_->loaded); error != 0) {
    return make_error(ExitCode::failure,
                      "BPF delay: cannot attach to the sched tracepoints: {}; it needs tp_btf "
                      "on sched_switch, sched_wakeup, sched_wakeup_new and sched_migrate_task",
                      std::strerror(-error));
  }
  return Ok{};
}

Status DelayTracer::set_siblings(const std::vector<std::vector<int>>& siblings) {
  for (std::size_t cpu = 0; cpu < siblings.size() && cpu < VCPUMAP_DELAY_MAX_CPUS; ++cpu) {
    if (siblings[cpu].empty()) continue;
    vcpumap_delay_cpu entry{};  // before attach: nothing runs or waits yet
    for (const int other : siblings[cpu]) {
      if (entry.sibling_count == VCPUMAP_DELAY_MAX_SIBLINGS) break;
      entry.siblings[entry.sibling_count++] = other;
    }
    const auto key = static_cast<std::uint32_t>(cpu);
    if (bpf_map_update_elem(programs_->loaded.cpus, &key, &entry, BPF_ANY) != 0) {
      return make_error(ExitCode::failure, "BPF delay: cannot give CPU {} its SMT siblings: {}",
                        cpu, std::strerror(errno));
    }
  }
  return Ok{};
}

namespace {

// Every entry of a pairs-shaped map (pairs, beside).
Result<std::vector<DelayPair>> read_totals(int map) {
  std::vector<DelayPair> pairs;
  vcpumap_delay_key key{}, next{};
  const void* previous = nullptr;  // null asks for the first key
  while (bpf_map_get_next_key(map, previous, &next) == 0) {
    vcpumap_delay_value value{};
    key = next;
    previous = &key;
    if (bpf_map_lookup_elem(map, &key, &value) != 0) continue;  // cannot go: nothing deletes
    DelayPair pair;
    pair.waiter_tid = key.waiter_tid;
    pair.culprit_tgid = key.culprit_tgid;
    pair.culprit_tid = key.culprit_tid;
    pair.ns = value.ns;
    pair.culprit_kernel_thread = (value.culprit_flags & 0x00200000U) != 0;  // PF_KTHREAD
    pair.culprit_comm.assign(value.culprit_comm,
                             ::strnlen(value.culprit_comm, sizeof(value.culprit_comm)));
    pairs.push_back(std::move(pair));
  }
  if (errno != ENOENT) {
    return make_error(ExitCode::failure, "BPF delay: cannot read its totals: {}",
                      std::strerror(errno));
  }
  return pairs;
}

}  // namespace

Result<std::vector<DelayPair>> DelayTracer::read() const {
  return read_totals(programs_->loaded.pairs);
}

Result<std::vector<DelayPair>> DelayTracer::read_beside() const {
  return read_totals(programs_->loaded.beside);
}

DelayDropped DelayTracer::dropped() const {
  const auto* state = programs_->loaded.state;
  return {__atomic_load_n(&state->waiters_dropped, __ATOMIC_RELAXED),
          __atomic_load_n(&state->pairs_dropped, __ATOMIC_RELAXED),
          __atomic_load_n(&state->cpus_dropped, __ATOMIC_RELAXED),
          __atomic_load_n(&state->beside_dropped, __ATOMIC_RELAXED)};
}

std::vector<TaskReader::ProgramStats> DelayTracer::program_stats() const {
  std::vector<TaskReader::ProgramStats> all;
  for (const int program : programs_->loaded.programs) {
    const auto one = TaskReader::program_stats(program);
    if (!one) return {};
    all.push_back(*one);
  }
  return all;
}

}  // namespace vcpumap::bpf
