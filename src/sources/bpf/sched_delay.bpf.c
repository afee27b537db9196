// Who delayed each vCPU: tp_btf programs on sched_switch, sched_wakeup, sched_wakeup_new and
// sched_migrate_task split every watched vCPU's run delay among the tasks that ran on the CPU
// where it waited, for the time each ran, and add it up here in `pairs`, so that user space reads
// one map per interval whatever the switch rate.
//
// A vCPU starts waiting when it is woken, or when it is switched out still runnable (preempted);
// it stops when it is switched in. A vCPU moved while it waits starts over on its new CPU. The
// waiters of a CPU sit in cpus[cpu]; its events run under that CPU's runqueue lock, except a
// migration of a queued task, which holds the source's lock only: slots are claimed with a
// compare-and-swap, so two CPUs never take the same one.
//
// ran_beside: each CPU keeps which VM thread runs there since when. When a CPU switches, every
// pair of what ran there and what runs on each of its SMT siblings has run side by side since the
// later of their two starts: that is added to `beside` (for whichever is a vCPU) if they are
// threads of different VMs. Either side's switch ends a pair, so each stretch is counted once;
// the sibling's fields are read without its runqueue lock, so a switch on both siblings at the
// same instant can count a few hundred ns twice or not at all.
#include <linux/bpf.h>
#include <stdbool.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "delay_records.h"
#include "kernel_types.bpf.h"
#include "task_cpu.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, VCPUMAP_DELAY_MAX_WATCHED);
  __type(key, __s32);    // tid
  __type(value, __u32);  // VCPUMAP_WATCH_*
} watched SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, VCPUMAP_DELAY_MAX_CPUS);
  __type(key, __u32);
  __type(value, struct vcpumap_delay_cpu);
} cpus SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, VCPUMAP_DELAY_MAX_PAIRS);
  __type(key, struct vcpumap_delay_key);
  __type(value, struct vcpumap_delay_value);
} pairs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, VCPUMAP_DELAY_MAX_BESIDE);
  __type(key, struct vcpumap_delay_key);
  __type(value, struct vcpumap_delay_value);
} beside SEC(".maps");

struct vcpumap_delay_state state = {};

// VCPUMAP_WATCH_*, or 0 for a thread of no watched VM.
static __always_inline __u32 role_of(struct task_struct* task) {
  __s32 tid = task->pid;
  __u32* role = bpf_map_lookup_elem(&watched, &tid);
  return role ? *role : 0;
}

static __always_inline int is_watched_vcpu(struct task_struct* task) {
  return role_of(task) == VCPUMAP_WATCH_VCPU;
}

static __always_inline struct vcpumap_delay_cpu* cpu_state(__u32 cpu) {
  struct vcpumap_delay_cpu* found = bpf_map_lookup_elem(&cpus, &cpu);
  if (!found) __sync_fetch_and_add(&state.cpus_dropped, 1);
  return found;
}

// `tid` waits on this CPU from `now`, unless it already waits here (then since when it did).
static __always_inline void add_waiter(struct vcpumap_delay_cpu* here, __s32 tid, __u64 now) {
  for (int i = 0; i < VCPUMAP_DELAY_WAITERS_PER_CPU; i++) {
    if (here->waiters[i].tid == tid) return;
  }
  for (int i = 0; i < VCPUMAP_DELAY_WAITERS_PER_CPU; i++) {
    if (__sync_val_compare_and_swap(&here->waiters[i].tid, 0, tid) == 0) {
      here->waiters[i].since = now;
      return;
    }
  }
  __sync_fetch_and_add(&state.waiters_dropped, 1);
}

// `tid` no longer waits on this CPU.
static __always_inline void remove_waiter(struct vcpumap_delay_cpu* here, __s32 tid) {
  for (int i = 0; i < VCPUMAP_DELAY_WAITERS_PER_CPU; i++) {
    if (here->waiters[i].tid == tid) {
      here->waiters[i].since = 0;  // first: charge() skips a slot whose start is unknown
      here->waiters[i].tid = 0;
    }
  }
}

// beside[{vcpu, culprit}] += ns; the culprit is a VM's thread, known to user space by tid.
static __always_inline void add_beside(__s32 vcpu, __s32 tgid, __s32 tid, __u64 ns) {
  struct vcpumap_delay_key key = {.waiter_tid = vcpu, .culprit_tgid = tgid, .culprit_tid = tid};
  struct vcpumap_delay_value* value = bpf_map_lookup_elem(&beside, &key);
  if (value) {
    __sync_fetch_and_add(&value->ns, ns);
    return;
  }
  struct vcpumap_delay_value fresh = {.ns = ns};
  if (bpf_map_update_elem(&beside, &key, &fresh, BPF_NOEXIST) == 0) return;
  value = bpf_map_lookup_elem(&beside, &key);  // another CPU added it meanwhile
  if (value) {
    __sync_fetch_and_add(&value->ns, ns);
  } else {
    __sync_fetch_and_add(&state.beside_dropped, 1);
  }
}

// What ran on `here` and what runs on each of its siblings ran side by side until `now`.
static __always_inline void charge_beside(struct vcpumap_delay_cpu* here, __u64 now) {
  if (here->running_role == 0) return;
  for (int i = 0; i < VCPUMAP_DELAY_MAX_SIBLINGS; i++) {
    if (i >= here->sibling_count) break;
    __u32 cpu = (__u32)here->siblings[i];
    struct vcpumap_delay_cpu* other = bpf_map_lookup_elem(&cpus, &cpu);
    if (!other || other->running_role == 0) continue;
    const __s32 tgid = other->running_tgid, tid = other->running_tid;
    const __u32 role = other->running_role;
    __u64 start = other->running_since;
    if (here->running_since > start) start = here->running_since;
    if (tgid == here->running_tgid || start == 0 || now <= start) continue;
    if (here->running_role == VCPUMAP_WATCH_VCPU) {
      add_beside(here->running_tid, tgid, tid, now - start);
    }
    if (role == VCPUMAP_WATCH_VCPU) {
      add_beside(tid, here->running_tgid, here->running_tid, now - start);
    }
  }
}

static __always_inline void add_pair(__s32 waiter, struct task_struct* culprit, __u64 ns) {
  struct vcpumap_delay_key key = {.waiter_tid = waiter};
  key.culprit_tgid = culprit->tgid;
  key.culprit_tid = culprit->pid;
  struct vcpumap_delay_value* value = bpf_map_lookup_elem(&pairs, &key);
  if (value) {
    __sync_fetch_and_add(&value->ns, ns);
    return;
  }
  struct vcpumap_delay_value fresh = {.ns = ns};
  fresh.culprit_flags = culprit->flags;
  bpf_probe_read_kernel(fresh.culprit_comm, sizeof(fresh.culprit_comm), culprit->comm);
  if (bpf_map_update_elem(&pairs, &key, &fresh, BPF_NOEXIST) == 0) return;
  value = bpf_map_lookup_elem(&pairs, &key);  // another CPU added it meanwhile
  if (value) {
    __sync_fetch_and_add(&value->ns, ns);
  } else {
    __sync_fetch_and_add(&state.pairs_dropped, 1);
  }
}

// `ran` ran on this CPU from here->last_switch to `now`: every waiter here waited behind it.
static __always_inline void charge(struct vcpumap_delay_cpu* here, struct task_struct* ran,
                                   __u64 now) {
  for (int i = 0; i < VCPUMAP_DELAY_WAITERS_PER_CPU; i++) {
    __s32 tid = here->waiters[i].tid;
    __u64 start = here->waiters[i].since;
    if (tid == 0 || start == 0) continue;
    if (here->last_switch > start) start = here->last_switch;
    if (now > start) add_pair(tid, ran, now - start);
  }
}

SEC("tp_btf/sched_switch")
int BPF_PROG(delay_switch, bool preempt, struct task_struct* prev, struct task_struct* next,
             unsigned int prev_state) {
  struct vcpumap_delay_cpu* here = cpu_state(bpf_get_smp_processor_id());
  if (!here) return 0;
  __u64 now = bpf_ktime_get_ns();
  const int prev_watched = is_watched_vcpu(prev);
  const __u32 next_role = role_of(next);
  // A vCPU that ran does not wait: a slot still holding it means its switch-in was missed (the
  // kernel skips a program that would recurse), and it must not wait behind itself.
  if (prev_watched) remove_waiter(here, prev->pid);
  charge(here, prev, now);
  if (next_role == VCPUMAP_WATCH_VCPU) remove_waiter(here, next->pid);
  // prev stays on this runqueue, runnable, when it was preempted (whatever state it was setting:
  // __schedule dequeues only a task that schedules itself out) or its state is TASK_RUNNING (0).
  if (prev_watched && (preempt || prev_state == 0)) add_waiter(here, prev->pid, now);
  here->last_switch = now;
  if (here->sibling_count > 0) {
    charge_beside(here, now);
    here->running_tid = next->pid;
    here->running_tgid = next->tgid;
    here->running_role = next_role;
    here->running_since = now;
  }
  return 0;
}

// A wakeup of a task already running changes nothing; one already queued keeps its start.
static __always_inline void woken(struct task_struct* task) {
  if (!is_watched_vcpu(task) || task->on_cpu) return;
  struct vcpumap_delay_cpu* there = cpu_state((__u32)vcpumap_task_cpu(task));
  if (there) add_waiter(there, task->pid, bpf_ktime_get_ns());
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(delay_wakeup, struct task_struct* task) {
  woken(task);
  return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(delay_wakeup_new, struct task_struct* task) {
  woken(task);
  return 0;
}

// Fired before the move (task_cpu() is still the old CPU). Only a waiter moves: a task migrated
// while asleep (at its wakeup) is added by the wakeup that follows.
SEC("tp_btf/sched_migrate_task")
int BPF_PROG(delay_migrate, struct task_struct* task, int dest_cpu) {
  if (!is_watched_vcpu(task)) return 0;
  struct vcpumap_delay_cpu* from = cpu_state((__u32)vcpumap_task_cpu(task));
  if (!from) return 0;
  int waiting = 0;
  for (int i = 0; i < VCPUMAP_DELAY_WAITERS_PER_CPU; i++) {
    if (from->waiters[i].tid == task->pid) waiting = 1;
  }
  if (!waiting) return 0;
  remove_waiter(from, task->pid);
  struct vcpumap_delay_cpu* to = cpu_state((__u32)dest_cpu);
  if (to) add_waiter(to, task->pid, bpf_ktime_get_ns());
  return 0;
}
