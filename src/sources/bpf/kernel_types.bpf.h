// The few kernel types the BPF programs read, declared by hand instead of a vmlinux.h.
//
// Every struct is preserve_access_index, so clang emits a CO-RE relocation for each field and
// libbpf moves it to the running kernel's offset (from /sys/kernel/btf/vmlinux) at load time:
// only the names and types below must match the kernel, not the layout. Why not vmlinux.h:
// generating it needs the BUILD machine's /sys/kernel/btf/vmlinux (absent in containers, chroots
// and builders without BTF), ties the build to that kernel's type set (a 6.1 builder has no
// struct bpf_iter_task), and a 3 MB generated header hides which fields the programs rely on.
#pragma once

#include <linux/types.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

// NR_CPUS bits in the kernel; its real size is asked with bpf_core_field_size().
struct cpumask {
  unsigned long bits[1];
};

struct thread_info {
  __u32 cpu;  // task_cpu() on x86 since 5.16
};

struct sched_entity {
  __u64 sum_exec_runtime;
  __u64 nr_migrations;
};

// Only with CONFIG_SCHED_INFO (bpf_core_field_exists tells).
struct sched_info {
  unsigned long pcount;
  unsigned long long run_delay;
};

struct signal_struct {
  int nr_threads;
};

// A task's cgroup v2 id: task->cgroups->dfl_cgrp->kn->id (a u64 since 5.5).
struct kernfs_node {
  __u64 id;
};
struct cgroup {
  struct kernfs_node* kn;
};
struct css_set {
  struct cgroup* dfl_cgrp;
};

struct task_struct {
  struct thread_info thread_info;
  unsigned int __state;
  unsigned int flags;
  int on_cpu;  // CONFIG_SMP: running on a CPU now (or being switched out)
  int nr_cpus_allowed;
  struct cpumask cpus_mask;
  struct sched_entity se;
  struct sched_info sched_info;
  int exit_state;
  int pid;
  int tgid;
  unsigned long nvcsw;
  unsigned long nivcsw;
  __u64 start_boottime;
  char comm[16];
  struct signal_struct* signal;
  struct css_set* cgroups;
};

// Older names of the same facts, for kernels before the renames (libbpf ignores "___suffix").
struct task_struct___before_5_16 {
  int cpu;  // moved to thread_info.cpu in 5.16
};
struct task_struct___before_5_14 {
  long state;  // renamed __state in 5.14
};

// The context of an iter/task program.
struct seq_file;
struct bpf_iter_meta {
  struct seq_file* seq;
  __u64 session_id;
  __u64 seq_num;
};
struct bpf_iter__task {
  struct bpf_iter_meta* meta;
  struct task_struct* task;  // NULL once at the end of the walk
};

#pragma clang attribute pop

// The kernel's iterator states, opaque; the verifier checks their size against the kernel's.
struct vcpumap_iter_num {
  __u64 opaque[1];
} __attribute__((aligned(8)));
struct vcpumap_iter_task {
  __u64 opaque[3];
} __attribute__((aligned(8)));

// bpf_iter_task_new()'s walks: enum bpf_iter_task_type of kernel/bpf/task_iter.c, fixed since
// 6.7. Plain values: the enum is in no kernel's BTF (no type uses it), so CO-RE cannot relocate it.
#define VCPUMAP_TASK_ITER_ALL_PROCS 0
#define VCPUMAP_TASK_ITER_PROC_THREADS 2

#define VCPUMAP_PF_KTHREAD 0x00200000  // task->flags of a kernel thread (include/linux/sched.h)
