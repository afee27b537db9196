// Loading the BPF programs through light skeletons (bpftool gen skeleton -L), behind a C
// interface: the generated headers are C only.
//
// Why light skeletons: a light skeleton's loader runs in the kernel, which performs the CO-RE
// relocations against its own BTF. libbpf's full skeleton reads and indexes the 5.5 MB
// /sys/kernel/btf/vmlinux in the process instead, which added 12 MiB to peak RSS here (the
// target for the whole tool is 32 MiB). It needs kernel 5.18 or later, below both walkers'.
#pragma once

#include "sources/bpf/delay_records.h"
#include "sources/bpf/records.h"

#ifdef __cplusplus
extern "C" {
#endif

// The open-coded walker's programs and maps (descriptors) and its mmapped .bss.
struct vcpumap_syscall_programs {
  int read_threads, list_processes;  // programs
  int tgids, threads, processes;     // maps (BPF_F_MMAPABLE arrays)
  struct vcpumap_syscall_state* state;
  void* skeleton;
};

// The seq-file walker's programs, its `wanted` map and its mmapped .bss.
struct vcpumap_seq_programs {
  int emit_thread, emit_wanted_thread, emit_process;  // programs
  int wanted;                                         // map
  struct vcpumap_seq_state* state;
  void* skeleton;
};

// The run-delay attribution programs (sched_delay.bpf.c), their maps and their mmapped .bss.
struct vcpumap_delay_programs {
  int programs[4];  // switch, wakeup, wakeup_new, migrate: for their run statistics
  int watched, cpus, pairs, beside;  // maps
  struct vcpumap_delay_state* state;
  void* skeleton;
};

// The exact-recording programs (sched_events.bpf.c), their maps and their mmapped .bss.
struct vcpumap_event_programs {
  int programs[4];  // switch, migrate, wakeup, wakeup_new
  int tgids, events;
  struct vcpumap_events_state* state;
  void* skeleton;
};

// Loads the open-coded walker's programs into `programs`, each of its maps `capacity` entries
// (at most VCPUMAP_MAX_*); 0, or a negative errno.
int vcpumap_load_syscall_programs(struct vcpumap_syscall_programs* programs, unsigned capacity);
// Unloads them (nothing if never loaded).
void vcpumap_destroy_syscall_programs(struct vcpumap_syscall_programs* programs);
// Loads the seq-file walker's programs into `programs`, its `wanted` map `capacity` entries (at
// most VCPUMAP_MAX_TGIDS); 0, or a negative errno.
int vcpumap_load_seq_programs(struct vcpumap_seq_programs* programs, unsigned capacity);
// Unloads them (nothing if never loaded).
void vcpumap_destroy_seq_programs(struct vcpumap_seq_programs* programs);

// Loads the attribution programs into `programs`, not attached; 0, or a negative errno.
int vcpumap_load_delay_programs(struct vcpumap_delay_programs* programs);
// Attaches them to their tracepoints; 0, or a negative errno.
int vcpumap_attach_delay_programs(struct vcpumap_delay_programs* programs);
// Detaches and unloads them (nothing if never loaded).
void vcpumap_destroy_delay_programs(struct vcpumap_delay_programs* programs);

// Loads the exact-recording programs into `programs`, not attached; 0, or a negative errno.
int vcpumap_load_event_programs(struct vcpumap_event_programs* programs);
// Attaches them to their tracepoints; 0, or a negative errno.
int vcpumap_attach_event_programs(struct vcpumap_event_programs* programs);
// Detaches and unloads them (nothing if never loaded).
void vcpumap_destroy_event_programs(struct vcpumap_event_programs* programs);

#ifdef __cplusplus
}
#endif
