// task_cpu() for the BPF programs: stat field 39, the CPU a task runs on or last ran on.
#pragma once

#include <bpf/bpf_core_read.h>

#include "kernel_types.bpf.h"

// thread_info.cpu on x86 since 5.16, task->cpu before.
static __always_inline __s32 vcpumap_task_cpu(struct task_struct* task) {
  if (bpf_core_field_exists(task->thread_info.cpu)) return (__s32)task->thread_info.cpu;
  return ((struct task_struct___before_5_16*)task)->cpu;
}
