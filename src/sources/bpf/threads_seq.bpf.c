// The seq-file walker (kernel 5.8+; per process, link_info.task.pid, since 6.1): iter/task
// programs that write one fixed record per task into the iterator's seq file, which user space
// read()s. emit_thread is attached once per process (the kernel walks that process' threads);
// emit_process to the whole system, keeping thread-group leaders only.
#include <linux/bpf.h>

#include "fill_record.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/task")
int emit_thread(struct bpf_iter__task* ctx) {
  struct task_struct* task = ctx->task;
  if (!task) return 0;
  struct vcpumap_task_record record = {};
  fill_task_record(&record, task);
  bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
  return 0;
}

SEC("iter/task")
int emit_process(struct bpf_iter__task* ctx) {
  struct task_struct* task = ctx->task;
  if (!task || task->pid != task->tgid) return 0;
  struct vcpumap_process_record record = {};
  record.tgid = task->tgid;
  record.start_boottime_ns = task->start_boottime;
  record.task_flags = task->flags;
  record.nr_threads = task->signal->nr_threads;  // status' Threads:
  bpf_probe_read_kernel(record.comm, sizeof(record.comm), task->comm);
  bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
  return 0;
}
