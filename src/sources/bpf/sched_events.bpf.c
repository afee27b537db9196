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

// armed[cpu]: a watched thread may be waiting there (woken onto it, preempted on it, moved to
// it), so every switch there is kept: the tasks it waited behind. Cleared when the CPU goes
// idle, which it does only with nothing runnable, or runs a watched thread: a second vCPU still
// waiting there then has the switches until the next watched one unseen, and that stretch is
// charged to the task its wait ends behind (the sum stays right). Armed costs events, not facts.
__u8 armed[VCPUMAP_DELAY_MAX_CPUS] = {};

static __always_inline void arm(__u32 cpu) {
  armed[cpu & (VCPUMAP_DELAY_MAX_CPUS - 1)] = 1;
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
  if (!prev_watched && !watched(next) && !armed[cpu]) return 0;
  // A task preempted is still runnable, whatever state it was setting (the raw prev_state of
  // tp_btf is not the tracepoint's, which reports a preempted task as running): 0 then, as for
  // one switched out while TASK_RUNNING.
  const __s64 state = preempt ? 0 : prev_state;
  // Runnable, it waits here; the idle task runs only with nothing queued.
  // Disarmed when the CPU goes idle, or runs a watched thread (whose switch-out comes anyway):
  // a busy CPU does not stay armed for good. Armed again by a watched thread preempted here.
  if (next->pid == 0 || watched(next)) armed[cpu] = 0;
  if (prev_watched && state == 0) arm(cpu);
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
  struct vcpumap_sched_event* event = reserve(VCPUMAP_EVENT_MIGRATE);
  if (!event) return 0;
  event->pid = task->pid;
  event->orig_cpu = vcpumap_task_cpu(task);  // not moved yet
  event->dest_cpu = dest_cpu;
  bpf_ringbuf_submit(event, 0);
  arm((__u32)dest_cpu);
  return 0;
}

static __always_inline void woken(struct task_struct* task) {
  if (!watched(task)) return;
  arm((__u32)vcpumap_task_cpu(task));
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
