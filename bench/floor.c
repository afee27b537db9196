/* The floors of issue 4's benchmark: the least work a snapshot or a sample of VM threads can do.
 *
 *   floor snapshot PID...     open, read and close each thread's stat, schedstat and sched once
 *   floor sample K PID...     open them once, then K rounds of one pread per kept file
 *
 * The runner measures whole-process CPU time (user+sys); `sample` with K=1 and K=N+1 gives the
 * cost of N rounds by difference. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char* const kFiles[] = {"stat", "schedstat", "sched"};
static char buffer[16384];

static void read_once(int dir, const char* tid) {
  char path[64];
  for (int f = 0; f < 3; ++f) {
    snprintf(path, sizeof path, "%s/%s", tid, kFiles[f]);
    int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (read(fd, buffer, sizeof buffer) < 0) perror(path);
    close(fd);
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: floor snapshot PID... | floor sample K PID...\n");
    return 2;
  }
  const int sample = strcmp(argv[1], "sample") == 0;
  const int rounds = sample ? atoi(argv[2]) : 0;
  int* fds = NULL;
  size_t count = 0, capacity = 0;
  for (int a = sample ? 3 : 2; a < argc; ++a) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/task", argv[a]);
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) continue;
    DIR* stream = fdopendir(dup(dir));
    struct dirent* entry;
    while ((entry = readdir(stream)) != NULL) {
      if (entry->d_name[0] == '.') continue;
      if (!sample) {
        read_once(dir, entry->d_name);
        continue;
      }
      for (int f = 0; f < 3; ++f) {
        snprintf(path, sizeof path, "%s/%s", entry->d_name, kFiles[f]);
        if (count == capacity) {
          capacity = capacity ? capacity * 2 : 1024;
          fds = realloc(fds, capacity * sizeof *fds);
        }
        fds[count] = openat(dir, path, O_RDONLY | O_CLOEXEC);
        if (fds[count] < 0 && (errno == EMFILE || errno == ENFILE)) {
          perror("floor: keeping every file open needs a higher ulimit -n");
          return 1;
        }
        ++count;
      }
    }
    closedir(stream);
    close(dir);
  }
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < count; ++i) {
      if (fds[i] >= 0 && pread(fds[i], buffer, sizeof buffer, 0) < 0) perror("pread");
    }
  }
  free(fds);
  return 0;
}
