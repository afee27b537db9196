#!/usr/bin/env bash
# What dominates what is left of issue 11's costs, by profile, over the fake guests of
# bench/run.sh: `list --json` (default source) at A x T and one bpf sampler at B x T.
#   perf record (cpu-clock, kernel and user stacks: the BPF load and walk run in the kernel),
#     each sample put in the first category one of its frames matches (see CATEGORIES);
#   valgrind --tool=callgrind on list --json: user-space instructions, which are reproducible on
#     a shared machine where times are not.
# Usage: bench/profile.sh BUILD_DIR [A] [B] [T] [ROUNDS]
set -uo pipefail
BUILD=${1:?usage: bench/profile.sh BUILD_DIR [A] [B] [T] [ROUNDS]}
A=${2:-200}
B=${3:-1250}
T=${4:-8}
ROUNDS=${5:-10}
VCPUMAP=$BUILD/src/cli/vcpumap
FAKE_GUEST=$BUILD/tests/fake_guest
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vcpumap-profile.XXXXXX")
PARENTS=()
cleanup() {
  for parent in "${PARENTS[@]}"; do kill -TERM "$parent" 2>/dev/null && wait "$parent" 2>/dev/null; done
  rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for tool in perf valgrind; do
  command -v "$tool" >/dev/null || { echo "profile: needs $tool (scripts/install-deps.sh test)" >&2; exit 1; }
done

count=0
grow_to() {
  local more=$(($1 - count)) file="$TMP/pids.${#PARENTS[@]}"
  ((more > 0)) || return 0
  "$FAKE_GUEST" --guests "$more" --threads "$T" --iothread -name "guest=prof${#PARENTS[@]}" >"$file" &
  PARENTS+=($!)
  for ((i = 0; i < 1200; i++)); do
    [[ $(grep -c '' "$file" 2>/dev/null) -ge $more ]] && break
    sleep 0.1
  done
  (($(grep -c '' "$file") == more)) || { echo "profile: guests did not start" >&2; exit 1; }
  count=$1
  sleep 1
}

# Frame patterns, first match wins, tried on the whole stack (leaf to root).
categorize() {
  perf script -i "$1" -F comm,ip,sym,dso 2>/dev/null | python3 -c '
import re, sys
CATEGORIES = [
    ("BPF load (verifier, CO-RE by BTF name, maps)", r"loader\.prog|bpf_prog_load|map_create|TaskReader::open|bpf_object|skel_"),
    ("start-up: dynamic loader", r"_dl_|ld-linux"),
    ("BPF walk (the programs, test_run)", r"bpf_prog_\w+_(read_threads|list_processes)|bpf_iter_task|bpf_prog_test_run"),
    ("rendering (JSON, views, output)", r"write_snapshot_json|nlohmann|views::|fmt::|_IO_|write\b|ksys_write"),
    ("discovery (processes, cmdline)", r"find_vms|list_processes|read_argv|read_comm|cmdline|identify_vm"),
    ("sampler bookkeeping (deltas, sort)", r"Sampler::|thread_rates|thread_order_less"),
    ("procfs reads", r"proc_|seq_read|do_sys_openat2|vfs_read"),
    ("exit, page faults, malloc", r"do_exit|exit_mmap|__run_exit_handlers|page_fault|malloc|free"),
]
counts, total, stack = {}, 0, None
def flush():
    global total
    if not stack: return
    total += 1
    text = " ".join(stack)
    for name, pattern in CATEGORIES:
        if re.search(pattern, text):
            counts[name] = counts.get(name, 0) + 1
            break
    else:
        counts["other"] = counts.get("other", 0) + 1
for line in sys.stdin:
    if not line.strip():
        flush(); stack = None
    elif not line[0].isspace():  # the first line of a sample: its command; vcpumap only
        flush(); stack = [] if line.split()[0] == "vcpumap" else None
    elif stack is not None:
        stack.append(line.strip())
flush()
for name, n in sorted(counts.items(), key=lambda item: -item[1]):
    print(f"    {100 * n / max(total, 1):5.1f}%  {name}")
print(f"    ({total} samples)")
'
}

grow_to "$A"
perf record -q -F 1999 --call-graph dwarf,16384 -o "$TMP/list.data" -- sh -c \
  "for i in \$(seq $ROUNDS); do '$VCPUMAP' --no-libvirt list --json >/dev/null; done" 2>/dev/null
echo "list --json at $A x $T, $ROUNDS runs (perf, cpu-clock):"
categorize "$TMP/list.data"
valgrind --tool=callgrind --callgrind-out-file="$TMP/list.cg" "$VCPUMAP" --no-libvirt list --json \
  >/dev/null 2>&1
echo "list --json at $A x $T (callgrind, user-space instructions, inclusive):"
callgrind_annotate --inclusive=yes "$TMP/list.cg" 2>/dev/null | python3 -c '
import re, sys
WANTED = [("total", r"PROGRAM TOTALS"), ("start-up: dynamic loader", r":_dl_start "),
          ("snapshot (discovery + read)", r":vcpumap::take_snapshot\(vcpumap::SnapshotOptions const&\) "),
          ("rendering: write_snapshot_json", r":vcpumap::views::write_snapshot_json"),
          ("BPF open, user side (the load runs in the kernel)", r":vcpumap::bpf::TaskReader::open")]
seen = {}
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)", line)
    if not m: continue
    for name, pattern in WANTED:
        if name not in seen and re.search(pattern, line):
            seen[name] = int(m.group(1).replace(",", ""))
total = seen.get("total", 1)
for name, _ in WANTED:
    if name in seen:
        print(f"    {seen[name] / 1e6:8.1f} M instructions  {100 * seen[name] / total:5.1f}%  {name}")
'

grow_to "$B"
perf record -q -F 1999 --call-graph dwarf,16384 -o "$TMP/top.data" -- "$VCPUMAP" --source bpf --no-libvirt top -b \
  -n $((ROUNDS * 3 + 1)) -d 0.1 -f no-such-vm >/dev/null 2>&1
echo "bpf sampler at $B x $T, $((ROUNDS * 3 + 1)) refreshes, start-up included (perf, cpu-clock):"
categorize "$TMP/top.data"
