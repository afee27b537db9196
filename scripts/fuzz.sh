#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD (configured with -DVCPUMAP_FUZZ=ON, see `make fuzz`) for
# SECONDS each, starting from its seed corpus in tests/fuzz/corpus/TARGET. Usage:
#   scripts/fuzz.sh BUILD [SECONDS [TARGET...]]
# New inputs go to BUILD/fuzz-corpus/TARGET (the checked-in seeds are never written). A crash,
# a sanitizer report or a broken invariant keeps its input as BUILD/crashes/TARGET-crash-* (or
# leak-*, timeout-*, oom-*), and the script exits 1 after running the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/fuzz.sh BUILD [SECONDS [TARGET...]]}
seconds=${2:-30}
shift $(($# < 2 ? $# : 2))
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

mkdir -p "$build/crashes"
failed=()
for target in "${targets[@]}"; do
  binary=$build/tests/fuzz/fuzz_$target
  [[ -x $binary ]] || { echo "fuzz.sh: no $binary (run make fuzz)" >&2; exit 2; }
  mkdir -p "$build/fuzz-corpus/$target"
  inputs=("$build/fuzz-corpus/$target" "tests/fuzz/corpus/$target")
  [[ -d tests/fuzz/regressions/$target ]] && inputs+=("tests/fuzz/regressions/$target")
  log=$build/crashes/$target.log
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb/-malloc_limit_mb: a parser asked to
  # allocate 128 MiB by a few bytes of input is a bug too.
  if "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=128 \
      -print_final_stats=1 -artifact_prefix="$build/crashes/$target-" "${inputs[@]}" >"$log" 2>&1; then
    echo "fuzz $target: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${seconds} s, $(grep -c . <(ls "$build/fuzz-corpus/$target")) inputs in its corpus, no crash"
  else
    failed+=("$target")
    echo "fuzz $target: FAILED; the log is $log, the input that broke it:" >&2
    ls "$build/crashes/$target-"* 2>/dev/null | grep -v '\.log$' >&2 || true
    grep -m3 -E 'ERROR|invariant broken|runtime error' "$log" >&2 || true
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}; reproduce one with" \
    "$build/tests/fuzz/fuzz_TARGET FILE (tests/README.md)" >&2
  exit 1
fi
