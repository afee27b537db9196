// The records the BPF programs write and task_reader.cpp reads: one layout, included by the BPF C
// (clang -target bpf) and by C++, so it holds only fixed-size C types from <linux/types.h>.
#pragma once

#include <linux/types.h>

// CPUs 0..255 of a thread's cpus_mask fit in a record; task_reader.cpp asks sched_getaffinity
// for a thread whose mask holds CPUs above (its popcount is short of nr_cpus_allowed).
#define VCPUMAP_MASK_WORDS 4

// Largest capacities of the walkers' maps (entries). The loader sizes them to the host at load
// time (task_reader.cpp): the kernel allocates and zeroes the whole of an array map at creation,
// and 65536 entries of each cost 12 MB zeroed, the largest part of a one-shot command's time.
#define VCPUMAP_MAX_TGIDS 65536
#define VCPUMAP_MAX_THREADS 65536
#define VCPUMAP_MAX_PROCESSES 65536

// One thread as the kernel has it (128 bytes). Raw kernel values; task_reader.cpp converts.
struct vcpumap_task_record {
  __s32 tgid;
  __s32 tid;
  __u64 start_boottime_ns;  // task->start_boottime: stat field 22 before nsec_to_clock_t
  __u32 state;              // task->__state (stat field 3 is computed from it and exit_state)
  __u32 exit_state;         // task->exit_state
  __s32 cpu;                // task_cpu(): thread_info.cpu on x86 since 5.16
  __s32 nr_cpus_allowed;    // weight of cpus_mask
  __u64 sum_exec_runtime;   // se.sum_exec_runtime: schedstat field 1
  __u64 run_delay;          // sched_info.run_delay: schedstat field 2
  __u64 pcount;             // sched_info.pcount: schedstat field 3
  __u64 nr_migrations;      // se.nr_migrations: /proc/TID/sched
  __u64 nvcsw;              // nr_voluntary_switches in /proc/TID/sched
  __u64 nivcsw;             // nr_involuntary_switches in /proc/TID/sched
  __u64 cpus_mask[VCPUMAP_MASK_WORDS];
  char comm[16];  // TASK_COMM_LEN; NUL-terminated by the kernel
};

// One process (thread-group leader).
struct vcpumap_process_record {
  __s32 tgid;
  __s32 nr_threads;  // signal->nr_threads, what status' Threads: shows
  __u64 start_boottime_ns;
  __u32 task_flags;  // task->flags; PF_KTHREAD marks a kernel thread
  char comm[16];
  __u32 reserved;
};

// The open-coded walker's .bss (threads_syscall.bpf.c's `state`): user space sets the inputs
// through its mmap before a run; the programs set the rest.
struct vcpumap_syscall_state {
  __u32 first_tgid;           // in: index into tgids[] of the first process to walk
  __u32 nr_tgids;             // in: how many from there
  __u32 nr_records;           // out: records in threads[]
  __u32 next_tgid;            // out: index of the first process not walked (did not fit)
  __u32 nr_processes;         // out: records in processes[]
  __u32 processes_truncated;  // out: processes[] was full
  __u32 has_sched_info;       // out: CONFIG_SCHED_INFO: run_delay and pcount are real
};

// The seq-file walker's .bss (threads_seq.bpf.c's `state`).
struct vcpumap_seq_state {
  __u32 has_sched_info;  // as above
};
