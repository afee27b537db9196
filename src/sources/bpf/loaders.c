#include "sources/bpf/loaders.h"

#include <errno.h>

#include "sources/bpf/sched_delay.lskel.h"
#include "sources/bpf/sched_events.lskel.h"
#include "sources/bpf/threads_seq.lskel.h"
#include "sources/bpf/threads_syscall.lskel.h"

int vcpumap_load_syscall_programs(struct vcpumap_syscall_programs* programs, unsigned capacity) {
  struct threads_syscall* skeleton = threads_syscall__open();
  if (skeleton == NULL) return -ENOMEM;
  // The loader program takes a map's max_entries from here where it is not 0.
  skeleton->maps.tgids.max_entries = capacity;
  skeleton->maps.threads.max_entries = capacity;
  skeleton->maps.processes.max_entries = capacity;
  const int error = threads_syscall__load(skeleton);
  if (error != 0) {
    threads_syscall__destroy(skeleton);
    return error < 0 ? error : -EINVAL;
  }
  programs->read_threads = skeleton->progs.read_threads.prog_fd;
  programs->list_processes = skeleton->progs.list_processes.prog_fd;
  programs->tgids = skeleton->maps.tgids.map_fd;
  programs->threads = skeleton->maps.threads.map_fd;
  programs->processes = skeleton->maps.processes.map_fd;
  programs->state = &skeleton->bss->state;
  programs->skeleton = skeleton;
  return 0;
}

void vcpumap_destroy_syscall_programs(struct vcpumap_syscall_programs* programs) {
  threads_syscall__destroy((struct threads_syscall*)programs->skeleton);
  programs->skeleton = NULL;
}

int vcpumap_load_seq_programs(struct vcpumap_seq_programs* programs, unsigned capacity) {
  struct threads_seq* skeleton = threads_seq__open();
  if (skeleton == NULL) return -ENOMEM;
  skeleton->maps.wanted.max_entries = capacity;
  const int error = threads_seq__load(skeleton);
  if (error != 0) {
    threads_seq__destroy(skeleton);
    return error < 0 ? error : -EINVAL;
  }
  programs->emit_thread = skeleton->progs.emit_thread.prog_fd;
  programs->emit_wanted_thread = skeleton->progs.emit_wanted_thread.prog_fd;
  programs->emit_process = skeleton->progs.emit_process.prog_fd;
  programs->wanted = skeleton->maps.wanted.map_fd;
  programs->state = &skeleton->bss->state;
  programs->skeleton = skeleton;
  return 0;
}

void vcpumap_destroy_seq_programs(struct vcpumap_seq_programs* programs) {
  threads_seq__destroy((struct threads_seq*)programs->skeleton);
  programs->skeleton = NULL;
}

int vcpumap_load_delay_programs(struct vcpumap_delay_programs* programs) {
  struct sched_delay* skeleton = sched_delay__open();
  if (skeleton == NULL) return -ENOMEM;
  const int error = sched_delay__load(skeleton);
  if (error != 0) {
    sched_delay__destroy(skeleton);
    return error < 0 ? error : -EINVAL;
  }
  programs->programs[0] = skeleton->progs.delay_switch.prog_fd;
  programs->programs[1] = skeleton->progs.delay_wakeup.prog_fd;
  programs->programs[2] = skeleton->progs.delay_wakeup_new.prog_fd;
  programs->programs[3] = skeleton->progs.delay_migrate.prog_fd;
  programs->watched = skeleton->maps.watched.map_fd;
  programs->cpus = skeleton->maps.cpus.map_fd;
  programs->pairs = skeleton->maps.pairs.map_fd;
  programs->beside = skeleton->maps.beside.map_fd;
  programs->state = &skeleton->bss->state;
  programs->skeleton = skeleton;
  return 0;
}

int vcpumap_attach_delay_programs(struct vcpumap_delay_programs* programs) {
  const int error = sched_delay__attach((struct sched_delay*)programs->skeleton);
  return error < 0 ? error : 0;
}

void vcpumap_destroy_delay_programs(struct vcpumap_delay_programs* programs) {
  sched_delay__destroy((struct sched_delay*)programs->skeleton);
  programs->skeleton = NULL;
}

int vcpumap_load_event_programs(struct vcpumap_event_programs* programs) {
  struct sched_events* skeleton = sched_events__open();
  if (skeleton == NULL) return -ENOMEM;
  const int error = sched_events__load(skeleton);
  if (error != 0) {
    sched_events__destroy(skeleton);
    return error < 0 ? error : -EINVAL;
  }
  programs->programs[0] = skeleton->progs.event_switch.prog_fd;
  programs->programs[1] = skeleton->progs.event_migrate.prog_fd;
  programs->programs[2] = skeleton->progs.event_wakeup.prog_fd;
  programs->programs[3] = skeleton->progs.event_wakeup_new.prog_fd;
  programs->tgids = skeleton->maps.tgids.map_fd;
  programs->events = skeleton->maps.events.map_fd;
  programs->state = &skeleton->bss->state;
  programs->skeleton = skeleton;
  return 0;
}

int vcpumap_attach_event_programs(struct vcpumap_event_programs* programs) {
  const int error = sched_events__attach((struct sched_events*)programs->skeleton);
  return error < 0 ? error : 0;
}

void vcpumap_destroy_event_programs(struct vcpumap_event_programs* programs) {
  sched_events__destroy((struct sched_events*)programs->skeleton);
  programs->skeleton = NULL;
}
