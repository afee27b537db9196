// The maps the run-delay attribution programs (sched_delay.bpf.c) share with delay_tracer.cpp:
// one layout for the BPF C and for C++, so fixed-size C types from <linux/types.h> only.
#pragma once

#include <linux/types.h>

// Capacities. A CPU past VCPUMAP_DELAY_MAX_CPUS, a waiter past the per-CPU slots or a pair past
// the aggregate map's size is counted in vcpumap_delay_state, and its delay is left to `other`.
#define VCPUMAP_DELAY_MAX_CPUS 1024
#define VCPUMAP_DELAY_WAITERS_PER_CPU 16
#define VCPUMAP_DELAY_MAX_WATCHED 16384
#define VCPUMAP_DELAY_MAX_PAIRS 65536
#define VCPUMAP_DELAY_MAX_BESIDE 16384
#define VCPUMAP_DELAY_MAX_SIBLINGS 7  // up to 8 SMT threads a core

// watched[tid]: the role of a thread of interest. Only vCPUs wait; the others are there so that
// a culprit's role is known in user space without a race against thread exit.
#define VCPUMAP_WATCH_VCPU 1
#define VCPUMAP_WATCH_OTHER 2

// One vCPU runnable on a CPU but not running, since `since` (bpf_ktime_get_ns); tid 0: free.
struct vcpumap_delay_waiter {
  __s32 tid;
  __u32 reserved;
  __u64 since;
};

// cpus[cpu]: who waits there, and when the task running there now started running.
struct vcpumap_delay_cpu {
  __u64 last_switch;  // 0 until the first switch seen on this CPU
  struct vcpumap_delay_waiter waiters[VCPUMAP_DELAY_WAITERS_PER_CPU];
  // For ran_beside: the watched thread running here since `running_since` (role 0: none, or
  // not a VM's thread), and the CPUs that share this one's core, set by user space before
  // attaching (sibling_count 0: no SMT, nothing is counted).
  __s32 running_tid, running_tgid;
  __u32 running_role;
  __u32 sibling_count;
  __u64 running_since;
  __s32 siblings[VCPUMAP_DELAY_MAX_SIBLINGS];
  __u32 reserved;
};

// pairs[{waiter, culprit}]: how long the waiting vCPU waited while the culprit ran where it waited.
// beside[{vCPU, culprit}], same types: how long the vCPU ran while the culprit, another VM's
// thread, ran on an SMT sibling of its CPU.
struct vcpumap_delay_key {
  __s32 waiter_tid;
  __s32 culprit_tgid;
  __s32 culprit_tid;
  __u32 reserved;
};
struct vcpumap_delay_value {
  __u64 ns;
  __u32 culprit_flags;    // task->flags: PF_KTHREAD marks a kernel thread
  char culprit_comm[16];  // the culprit's comm when it was first seen
  __u32 reserved;
};

// The programs' .bss: what was dropped for lack of room, and how many events each program saw.
struct vcpumap_delay_state {
  __u64 waiters_dropped;  // a vCPU found every slot of its CPU taken
  __u64 pairs_dropped;    // the aggregate map was full: that delay is left to `other`
  __u64 cpus_dropped;     // an event on a CPU past VCPUMAP_DELAY_MAX_CPUS
  __u64 beside_dropped;   // the ran_beside map was full
};

// ---- The event ring for exact recording (sched_events.bpf.c) ----

#define VCPUMAP_EVENTS_MAX_TGIDS 4096
// 60,000 events (136 bytes each with the ring's header), drained every 100 ms at most.
#define VCPUMAP_EVENTS_RING_BYTES (8 * 1024 * 1024)

#define VCPUMAP_EVENT_SWITCH 1
#define VCPUMAP_EVENT_MIGRATE 2
#define VCPUMAP_EVENT_WAKEUP 3

// A task on one side of a switch: what a vCPU waited behind.
struct vcpumap_sched_task {
  __s32 tgid;
  __u32 flags;    // task->flags: PF_KTHREAD marks a kernel thread
  __u64 cgroup;   // cgroup v2 id: task->cgroups->dfl_cgrp->kn->id
  char comm[16];  // TASK_COMM_LEN
};

// One sched event of a watched process's thread (on either side of a switch), or a switch
// between two others on a CPU where a watched thread may wait.
struct vcpumap_sched_event {
  __u64 time_ns;                         // bpf_ktime_get_ns: CLOCK_MONOTONIC
  __u32 kind;                            // VCPUMAP_EVENT_*
  __s32 cpu;                             // where it fired
  __s32 prev_pid, next_pid;              // switch
  __s64 prev_state;                      // switch
  __s32 pid;                             // migrate, wakeup
  __s32 orig_cpu, dest_cpu;              // migrate
  __s32 target_cpu;                      // wakeup
  struct vcpumap_sched_task prev, next;  // switch
};

// The event programs' .bss: events that found the ring full, by the CPU they fired on.
struct vcpumap_events_state {
  __u64 lost[VCPUMAP_DELAY_MAX_CPUS];
};
