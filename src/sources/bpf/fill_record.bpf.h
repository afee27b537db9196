// Filling the records from a task_struct, shared by both walkers' programs. Each field names the
// procfs figure it equals, which is what the tests compare it with.
#pragma once

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "kernel_types.bpf.h"
#include "records.h"
#include "task_cpu.bpf.h"

// CONFIG_SCHED_INFO is on: run_delay and pcount are real (user space says n/a otherwise).
#define VCPUMAP_HAS_SCHED_INFO() bpf_core_field_exists(struct task_struct, sched_info)

static __always_inline void fill_task_record(struct vcpumap_task_record* record,
                                             struct task_struct* task) {
  record->tgid = task->tgid;
  record->tid = task->pid;
  // stat field 22 is nsec_to_clock_t(start_boottime) (fs/proc/array.c); user space divides.
  record->start_boottime_ns = task->start_boottime;
  // stat field 3 is task_state_index(): __state and exit_state; user space maps them to a letter.
  if (bpf_core_field_exists(task->__state)) {
    record->state = task->__state;
  } else {
    record->state = (__u32)((struct task_struct___before_5_14*)task)->state;
  }
  record->exit_state = (__u32)task->exit_state;
  // stat field 39 is task_cpu(task).
  record->cpu = vcpumap_task_cpu(task);
  // /proc/TID/schedstat prints these three (kernel/sched/... proc_pid_schedstat).
  record->sum_exec_runtime = task->se.sum_exec_runtime;
  record->run_delay = 0;
  record->pcount = 0;
  if (VCPUMAP_HAS_SCHED_INFO()) {
    record->run_delay = task->sched_info.run_delay;
    record->pcount = task->sched_info.pcount;
  }
  // /proc/TID/sched prints these (kernel/sched/debug.c proc_sched_show_task).
  record->nr_migrations = task->se.nr_migrations;
  record->nvcsw = task->nvcsw;
  record->nivcsw = task->nivcsw;
  // sched_getaffinity reads cpus_mask (not cpus_ptr, which migrate_disable() points at one CPU
  // for a moment); nr_cpus_allowed is its weight. The mask is NR_CPUS bits: copy what fits.
  record->nr_cpus_allowed = task->nr_cpus_allowed;
  // Records are reused from one walk to the next: clear the words the kernel's mask may not fill.
  for (int word = 0; word < VCPUMAP_MASK_WORDS; word++) record->cpus_mask[word] = 0;
  __u32 mask_size = bpf_core_field_size(task->cpus_mask);
  if (mask_size > sizeof(record->cpus_mask)) mask_size = sizeof(record->cpus_mask);
  bpf_probe_read_kernel(record->cpus_mask, mask_size, &task->cpus_mask);
  bpf_probe_read_kernel(record->comm, sizeof(record->comm), task->comm);
}
