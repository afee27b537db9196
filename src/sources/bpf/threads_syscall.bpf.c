// The open-coded walker (kernel >= 6.7): SEC("syscall") programs run with BPF_PROG_TEST_RUN, each
// walking many processes in one call, because every call costs 2-25 us whatever it does.
//
// read_threads: for each tgid in tgids[first_tgid .. first_tgid + nr_tgids), every thread of that
// process (bpf_iter_task_new with BPF_TASK_ITER_PROC_THREADS) into threads[], which user space
// reads through mmap. A process that does not fit whole is left for the next call (next_tgid).
// The counters are in `state` (records.h).
// list_processes: every thread-group leader (BPF_TASK_ITER_ALL_PROCS) into processes[].
//
// Loop counters and record counts live in .bss, not in registers: with a counter in a register
// every pass of an iterator loop is a new verifier state and the verifier gives up ("8193 jumps
// is too complex"); a value loaded from a map is unknown each pass, so the states converge.
#include <linux/bpf.h>

#include "fill_record.bpf.h"

char LICENSE[] SEC("license") = "GPL";

extern int bpf_iter_num_new(struct vcpumap_iter_num* it, int start, int end) __ksym;
extern int* bpf_iter_num_next(struct vcpumap_iter_num* it) __ksym;
extern void bpf_iter_num_destroy(struct vcpumap_iter_num* it) __ksym;
extern int bpf_iter_task_new(struct vcpumap_iter_task* it, struct task_struct* task,
                             unsigned int flags) __ksym;
extern struct task_struct* bpf_iter_task_next(struct vcpumap_iter_task* it) __ksym;
extern void bpf_iter_task_destroy(struct vcpumap_iter_task* it) __ksym;
extern struct task_struct* bpf_task_from_pid(__s32 pid) __ksym;
extern void bpf_task_release(struct task_struct* task) __ksym;
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, VCPUMAP_MAX_TGIDS);
  __type(key, __u32);
  __type(value, __u64);  // a tgid; array elements are 8-byte aligned whatever their type
} tgids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, VCPUMAP_MAX_THREADS);
  __type(key, __u32);
  __type(value, struct vcpumap_task_record);
} threads SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, VCPUMAP_MAX_PROCESSES);
  __type(key, __u32);
  __type(value, struct vcpumap_process_record);
} processes SEC(".maps");

struct vcpumap_syscall_state state = {};

SEC("syscall")
int read_threads(void* ctx) {
  struct vcpumap_iter_num tgid_iter;
  int* index;

  state.nr_records = 0;
  state.next_tgid = state.first_tgid;
  state.has_sched_info = VCPUMAP_HAS_SCHED_INFO();
  bpf_iter_num_new(&tgid_iter, (int)state.first_tgid, (int)(state.first_tgid + state.nr_tgids));
  while ((index = bpf_iter_num_next(&tgid_iter))) {
    __u32 key = (__u32)*index;
    __u64* slot_value = bpf_map_lookup_elem(&tgids, &key);
    if (!slot_value) break;
    __s32 tgid = (__s32)*slot_value;
    struct task_struct* leader = bpf_task_from_pid(tgid);
    if (!leader) {  // gone: no records, not an error
      state.next_tgid = key + 1;
      continue;
    }
    if (leader->tgid != tgid) {  // a thread's id, not a process': walking from it gives a tail
      bpf_task_release(leader);
      state.next_tgid = key + 1;
      continue;
    }
    __u32 process_start = state.nr_records;
    __u32 overflow = 0;
    struct vcpumap_iter_task thread_iter;
    struct task_struct* thread;
    // The task iterator must run under RCU (KF_RCU_PROTECTED); a thread exiting meanwhile is
    // simply not seen, or seen once more as it goes.
    bpf_rcu_read_lock();
    bpf_iter_task_new(&thread_iter, leader, VCPUMAP_TASK_ITER_PROC_THREADS);
    while ((thread = bpf_iter_task_next(&thread_iter))) {
      __u32 slot = state.nr_records;
      struct vcpumap_task_record* record = bpf_map_lookup_elem(&threads, &slot);
      if (!record) {  // full
        overflow = 1;
        break;
      }
      fill_task_record(record, thread);
      state.nr_records = slot + 1;
    }
    bpf_iter_task_destroy(&thread_iter);
    bpf_rcu_read_unlock();
    bpf_task_release(leader);
    if (overflow) {  // leave the whole process for the next call
      state.nr_records = process_start;
      break;
    }
    state.next_tgid = key + 1;
  }
  bpf_iter_num_destroy(&tgid_iter);
  return 0;
}

SEC("syscall")
int list_processes(void* ctx) {
  struct vcpumap_iter_task process_iter;
  struct task_struct* process;

  state.nr_processes = 0;
  state.processes_truncated = 0;
  bpf_rcu_read_lock();
  bpf_iter_task_new(&process_iter, 0, VCPUMAP_TASK_ITER_ALL_PROCS);
  while ((process = bpf_iter_task_next(&process_iter))) {
    __u32 slot = state.nr_processes;
    struct vcpumap_process_record* record = bpf_map_lookup_elem(&processes, &slot);
    if (!record) {
      state.processes_truncated = 1;
      break;
    }
    record->tgid = process->tgid;
    record->start_boottime_ns = process->start_boottime;
    record->task_flags = process->flags;
    // status' Threads:. Read, not walked: the verifier checks a walked pointer field against
    // vmlinux BTF by name, a linear search each time it passes, 3 ms of every load here.
    record->nr_threads = BPF_CORE_READ(process, signal, nr_threads);
    bpf_probe_read_kernel(record->comm, sizeof(record->comm), process->comm);
    state.nr_processes = slot + 1;
  }
  bpf_iter_task_destroy(&process_iter);
  bpf_rcu_read_unlock();
  return 0;
}
