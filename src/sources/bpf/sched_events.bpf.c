// Exact recording: tp_btf programs on sched_switch, sched_migrate_task, sched_wakeup and
// sched_wakeup_new put every event of a watched process's threads into one BPF ring buffer.
// They run inside the tracepoints, so no event is lost the way per-CPU perf rings lose them here;
// an event that finds the ring full is counted in state.lost, never silently dropped.
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
  __uint(max_entries, VCPUMAP_EVENTS_MAX_TGIDS);
  __type(key, __s32);  // tgid: a VM's new threads are in from their first event
  __type(value, __u8);
} tgids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, VCPUMAP_EVENTS_RING_BYTES);
} events SEC(".maps");

struct vcpumap_events_state state = {};

// Where each watched thread waits (its CPU + 1; 0 or none: it does not), and how many wait on
// each CPU. Every switch on a CPU with a waiter is kept (they are the tasks it waits behind), and
// only while it has one: counting the waiters, rather than arming a CPU until something watched
// runs there, keeps the switches a second waiter needs after the first one ran and slept. A CPU
// that goes idle has nothing queued: its count is 0 then, whatever events were missed.
struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, __u32);
} waits_on SEC(".maps");

__s32 waiting[VCPUMAP_DELAY_MAX_CPUS] = {};

// The thread whose storage is `where` (non-zero) no longer waits where it did.
static __always_inline void leave(__u32* where) {
  const __u32 cpu = (*where - 1) & (VCPUMAP_DELAY_MAX_CPUS - 1);
  *where = 0;
  // Below zero only after an idle reset with this waiter stale: back to none, not a debt.
  if (__sync_fetch_and_add(&waiting[cpu], -1) <= 0) waiting[cpu] = 0;
}

static __always_inline void stop_waiting(struct task_struct* task) {
  __u32* where = bpf_task_storage_get(&waits_on, task, 0, 0);
  if (where && *where != 0) leave(where);
}

static __always_inline void wait_on(struct task_struct* task, __u32 cpu) {
  cpu &= VCPUMAP_DELAY_MAX_CPUS - 1;
  __u32* where = bpf_task_storage_get(&waits_on, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!where) {
    // No storage (memory): the CPU keeps its switches until it goes idle; costs events only.
    __sync_fetch_and_add(&waiting[cpu], 1);
    return;
  }
  if (*where == cpu + 1) return;  // already queued here: nothing changes
  if (*where != 0) leave(where);  // queued elsewhere: it moved
  *where = cpu + 1;
  __sync_fetch_and_add(&waiting[cpu], 1);
}

static __always_inline void fill_task(struct vcpumap_sched_task* out, struct task_struct* task) {
  out->tgid = task->tgid;
  out->flags = task->flags;
  out->cgroup = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
  bpf_probe_read_kernel(out->comm, sizeof(out->comm), task->comm);
}

static __always_inline int watched(struct task_struct* task) {
  __s32 tgid = task->tgid;
  return bpf_map_lookup_elem(&tgids, &tgid) != 0;
}

static __always_inline struct vcpumap_sched_event* reserve(__u32 kind) {
  __u32 cpu = bpf_get_smp_processor_id();
  struct vcpumap_sched_event* event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
  if (!event) {
    __sync_fetch_and_add(&state.lost[cpu & (VCPUMAP_DELAY_MAX_CPUS - 1)], 1);
    return 0;
  }
  __builtin_memset(event, 0, sizeof(*event));
  event->time_ns = bpf_ktime_get_ns();
  event->kind = kind;
  event->cpu = (__s32)cpu;
  return event;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(event_switch, bool preempt, struct task_struct* prev, struct task_struct* next,
             unsigned int prev_state) {
  __u32 cpu = bpf_get_smp_processor_id() & (VCPUMAP_DELAY_MAX_CPUS - 1);
  const int prev_watched = watched(prev);
  if (!prev_watched && !watched(next) && waiting[cpu] <= 0) return 0;
  // Asked again rather than kept from above: clang merges two kept lookups into one OR of their
  // pointers, which the verifier refuses ("pointer |= pointer prohibited").
  const int next_watched = watched(next);
  // A task preempted is still runnable, whatever state it was setting (the raw prev_state of
  // tp_btf is not the tracepoint's, which reports a preempted task as running): 0 then, as for
  // one switched out while TASK_RUNNING.
  const __s64 state = preempt ? 0 : prev_state;
  if (next_watched) stop_waiting(next);
  if (prev_watched) {
    if (state == 0) {
      wait_on(prev, cpu);  // runnable, it waits here
    } else {
      stop_waiting(prev);
    }
  }
  if (next->pid == 0) waiting[cpu] = 0;  // the idle task runs only with nothing queued
  struct vcpumap_sched_event* event = reserve(VCPUMAP_EVENT_SWITCH);
  if (!event) return 0;
  event->prev_pid = prev->pid;
  event->next_pid = next->pid;
  event->prev_state = state;
  fill_task(&event->prev, prev);
  fill_task(&event->next, next);
  bpf_ringbuf_submit(event, 0);
  return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(event_migrate, struct task_struct* task, int dest_cpu) {
  if (!watched(task)) return 0;
  // Only a waiter moves its wait; one moved asleep waits from the wakeup that follows. Counted
  // whether or not the ring has room for the event.
  __u32* where = bpf_task_storage_get(&waits_on, task, 0, 0);
  if (where && *where != 0) wait_on(task, (__u32)dest_cpu);
  struct vcpumap_sched_event* event = reserve(VCPUMAP_EVENT_MIGRATE);
  if (!event) return 0;
  event->pid = task->pid;
  event->orig_cpu = vcpumap_task_cpu(task);  // not moved yet
  event->dest_cpu = dest_cpu;
  bpf_ringbuf_submit(event, 0);
  return 0;
}

static __always_inline void woken(struct task_struct* task) {
  if (!watched(task)) return;
  // A wakeup of a task already running changes nothing.
  if (!task->on_cpu) wait_on(task, (__u32)vcpumap_task_cpu(task));
  struct vcpumap_sched_event* event = reserve(VCPUMAP_EVENT_WAKEUP);
  if (!event) return;
  event->pid = task->pid;
  event->target_cpu = vcpumap_task_cpu(task);
  bpf_ringbuf_submit(event, 0);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(event_wakeup, struct task_struct* task) {
  woken(task);
  return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(event_wakeup_new, struct task_struct* task) {
  woken(task);
  return 0;
}
