// The seq-file walker (kernel 5.8+; per process, link_info.task.pid, since 6.1): iter/task
// programs that write one fixed record per task into the iterator's seq file, which user space
// read()s. emit_thread is attached once per process (the kernel walks that process' threads).
// emit_wanted_thread is attached to the whole system and keeps the threads of the processes in
// `wanted`: one walk instead of one per process, cheaper when many processes are asked, as each
// per-process walk costs about 17 us of syscalls here. emit_process walks the whole system too,
// keeping thread-group leaders only.
#include <linux/bpf.h>

#include "fill_record.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct vcpumap_seq_state state = {};

SEC("iter/task")
int emit_thread(struct bpf_iter__task* ctx) {
  struct task_struct* task = ctx->task;
  if (!task) return 0;
  struct vcpumap_task_record record = {};
  state.has_sched_info = VCPUMAP_HAS_SCHED_INFO();
  fill_task_record(&record, task);
  bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
  return 0;
}

// The processes whose threads emit_wanted_thread keeps (value unused); user space keeps it in
// step with what it asks, with batch updates, so an unchanged set costs no syscall.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, VCPUMAP_MAX_TGIDS);
  __type(key, __s32);
  __type(value, __u8);
} wanted SEC(".maps");

SEC("iter/task")
int emit_wanted_thread(struct bpf_iter__task* ctx) {
  struct task_struct* task = ctx->task;
  if (!task) return 0;
  __s32 tgid = task->tgid;
  if (!bpf_map_lookup_elem(&wanted, &tgid)) return 0;
  struct vcpumap_task_record record = {};
  state.has_sched_info = VCPUMAP_HAS_SCHED_INFO();
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
  // status' Threads:. Read, not walked: the verifier checks a walked pointer field against
  // vmlinux BTF by name, a linear search each time it passes, 3 ms of every load here.
  record.nr_threads = BPF_CORE_READ(task, signal, nr_threads);
  bpf_probe_read_kernel(record.comm, sizeof(record.comm), task->comm);
  bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
  return 0;
}
