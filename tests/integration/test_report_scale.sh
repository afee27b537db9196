#!/usr/bin/env bash
# `vcpumap report --html` at the size issue 5 asks for, used in a real headless Chromium:
#   hour.rec   an hour of 8 VMs x 8 vCPUs on 2 packages x 16 cores x 2 SMT (64 CPUs), sampled
#              every 100 ms (36,001 samples x 88 threads), made by tests/tools/synth_recording
#              through the recorder's RecordingWriter; VM 0 is pinned, the others migrate
#   tenth.rec  the same host for 6 minutes (3,601 samples), and dense.rec the same 6 minutes
#              sampled every 10 ms (36,001 samples, as many as the hour)
#   exact.rec  a busy exact-mode minute: every vCPU switched in 200 times a second
# Checks: the report of an hour is quick and small in memory, its figures match what the
# generator did (pinned vCPUs never move, the others do); the HTML stays small and its element
# count follows the time columns, not the samples (ten times the samples over the same time draw
# no more than 1.5 times the elements; the hour's bars stay within lanes x columns); in Chromium, driven over the DevTools protocol (tests/tools/report_in_chromium.py),
# the page loads within bounds, the host-CPU lanes are what a user sees first, a real mouse click
# on the "vCPU lanes" toggle swaps them for the vCPU lanes, tooltips are there, and nothing is
# logged as an error. Prints the figures BENCHMARKS.md quotes.
# Usage: bash tests/integration/test_report_scale.sh PATH/TO/vcpumap [PATH/TO/synth_recording]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SYNTH=${2:-${SYNTH_RECORDING:-$(dirname "$VCPUMAP")/../../tests/synth_recording}}
[[ -x "$SYNTH" ]] || skip "no synth_recording at $SYNTH (build the synth_recording target)"
DRIVER="$TESTS_DIR/tools/report_in_chromium.py"

# Bounds a user would notice; the measured figures (BENCHMARKS.md) are well inside them.
MAX_REPORT_S=20          # `vcpumap report --html` of the hour, wall clock
MAX_REPORT_RSS_MIB=256   # its peak RSS: the report keeps totals and buckets, not samples
MAX_HTML_MIB=16          # the HTML of the hour
MAX_LOAD_MS=20000        # Chromium: navigation to the load event, on a loaded 2-CPU machine
if [[ "${VCPUMAP_SANITIZED:-}" == 1 ]]; then
  # An ASan+UBSan Debug build runs several times slower and maps shadow memory.
  MAX_REPORT_S=180
  MAX_REPORT_RSS_MIB=2048
  say "sanitizer build: report bounds widened to ${MAX_REPORT_S} s and ${MAX_REPORT_RSS_MIB} MiB"
fi
MAX_COLUMNS=600          # the design's bound on time columns per lane
STACKED=4                # at most 3 vCPUs and "other vCPUs" stacked in a CPU lane's cell

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$CHROMIUM" && $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
  say "chromium is missing: installing the Debian package (scripts/install-deps.sh lists it)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }
  CHROMIUM=$(command -v chromium || true)
fi
[[ -n "$CHROMIUM" ]] || skip "chromium is not installed and can't be installed here (apt-get install chromium)"

# timed OUT_PREFIX CMD...: runs CMD; OUT_PREFIX.time holds "wall_s user_s sys_s max_rss_kib".
timed() {
  local prefix=$1
  shift
  /usr/bin/time -o "$prefix.time" -f '%e %U %S %M' "$@" >"$prefix.out" 2>"$prefix.err"
}
[[ -x /usr/bin/time ]] || skip "/usr/bin/time is not installed (Debian package time)"

# py EXPR [ARGS...]: prints a Python expression's value, with the arguments as sys.argv[1:].
py() { python3 -c "import json, sys; print($1)" "${@:2}"; }

# --- the recordings --------------------------------------------------------------------------
"$SYNTH" -o "$TEST_TMP/hour.rec" --duration 3600 >/dev/null || fatal "synth_recording (hour) failed"
"$SYNTH" -o "$TEST_TMP/tenth.rec" --duration 360 >/dev/null || fatal "synth_recording (tenth) failed"
"$SYNTH" -o "$TEST_TMP/dense.rec" --duration 360 --interval 10 >/dev/null ||
  fatal "synth_recording (dense) failed"
"$SYNTH" -o "$TEST_TMP/exact.rec" --duration 60 --exact --switch-rate 200 >"$TEST_TMP/exact.synth" ||
  fatal "synth_recording (exact) failed"
HOUR_BYTES=$(stat -c %s "$TEST_TMP/hour.rec")

# --- the report of an hour: quick, bounded in memory, right --------------------------------
timed "$TEST_TMP/html" "$VCPUMAP" report "$TEST_TMP/hour.rec" --html "$TEST_TMP/hour.html"
assert_eq "report --html of the hour exits 0" 0 "$?"
read -r WALL USER SYS RSS_KIB <"$TEST_TMP/html.time"
HTML_BYTES=$(stat -c %s "$TEST_TMP/hour.html")
assert_true "report --html of the hour takes under ${MAX_REPORT_S} s (took ${WALL} s)" \
  py "sys.exit(0 if float(sys.argv[1]) < $MAX_REPORT_S else 1)" "$WALL"
assert_true "report --html peak RSS under ${MAX_REPORT_RSS_MIB} MiB (was $((RSS_KIB / 1024)) MiB)" \
  test "$RSS_KIB" -lt $((MAX_REPORT_RSS_MIB * 1024))
assert_true "the HTML of the hour is under ${MAX_HTML_MIB} MiB (is $HTML_BYTES B)" \
  test "$HTML_BYTES" -lt $((MAX_HTML_MIB << 20))
timed "$TEST_TMP/text" "$VCPUMAP" report "$TEST_TMP/hour.rec"
assert_eq "text report of the hour exits 0" 0 "$?"
read -r TEXT_WALL _ _ TEXT_RSS_KIB <"$TEST_TMP/text.time"
assert_match "text report: timeline of the 64 CPUs" "$(<"$TEST_TMP/text.out")" "CPU63"

expect_vcpumap --json report "$TEST_TMP/hour.rec"
JSON=$OUT
assert_eq "json: an hour" 3600 "$(json_eval "$JSON" 'round(d["duration_s"])')"
assert_eq "json: 8 VMs" 8 "$(json_eval "$JSON" 'len(d["vms"])')"
assert_eq "json: 64 vCPUs" 64 "$(json_eval "$JSON" 'sum(len(v["vcpus"]) for v in d["vms"])')"
assert_eq "json: the pinned VM's vCPUs never move" 0 \
  "$(json_eval "$JSON" 'sum(c["migrations"] for c in d["vms"][0]["vcpus"])')"
assert_eq "json: the pinned VM's vCPUs are each all on one CPU" "8" \
  "$(json_eval "$JSON" 'sum(1 for c in d["vms"][0]["vcpus"] if list(c["residency"].values()) == [1.0])')"
assert_eq "json: every floating vCPU moved" 56 \
  "$(json_eval "$JSON" 'sum(1 for v in d["vms"][1:] for c in v["vcpus"] if c["migrations"] > 0)')"

# --- the element count follows the columns, not the samples --------------------------------
"$CHROMIUM" --version >/dev/null 2>&1 || skip "$CHROMIUM does not run here"
# count_svg_elements NAME: renders NAME.rec to NAME.html, opens it in Chromium (NAME.json) and
# sets SVG_ELEMENTS to how many SVG elements the page holds.
count_svg_elements() {
  expect_vcpumap report "$TEST_TMP/$1.rec" --html "$TEST_TMP/$1.html"
  python3 "$DRIVER" "$CHROMIUM" "$TEST_TMP/$1.html" >"$TEST_TMP/$1.json" ||
    fatal "driving Chromium over the DevTools protocol failed ($1.html)"
  SVG_ELEMENTS=$(json_eval "$(<"$TEST_TMP/$1.json")" 'd["svg_elements"]')
}
count_svg_elements tenth
ELEMENTS_TENTH=$SVG_ELEMENTS
count_svg_elements dense
ELEMENTS_DENSE=$SVG_ELEMENTS
assert_true "36,001 samples draw at most 1.5 times what 3,601 samples of the same 6 minutes draw: $ELEMENTS_DENSE vs $ELEMENTS_TENTH SVG elements" \
  test $((2 * ELEMENTS_DENSE)) -le $((3 * ELEMENTS_TENTH))
python3 "$DRIVER" "$CHROMIUM" "$TEST_TMP/hour.html" --screenshot-prefix "$TEST_TMP/hour-" \
  >"$TEST_TMP/hour.json" || fatal "driving Chromium over the DevTools protocol failed (hour.html)"
PAGE=$(<"$TEST_TMP/hour.json")
ELEMENTS=$(json_eval "$PAGE" 'd["svg_elements"]')
COLUMN_S=$(json_eval "$PAGE" 'd["columns"]')
COLUMNS=$(py 'round(3600 / float(sys.argv[1]))' "$COLUMN_S")
assert_true "at most $MAX_COLUMNS time columns (one column = $COLUMN_S s: $COLUMNS columns)" \
  test "$COLUMNS" -le "$MAX_COLUMNS"
assert_true "CPU-lane bars bounded by 64 lanes x $COLUMNS columns x $STACKED" \
  test "$(json_eval "$PAGE" 'd["rects"]["timeline-cpu"]')" -le $((64 * (COLUMNS * STACKED + 1)))
assert_true "vCPU-lane bars bounded by 64 lanes x $COLUMNS columns" \
  test "$(json_eval "$PAGE" 'd["rects"]["timeline-vcpu"]')" -le $((64 * (COLUMNS + 1)))

# --- what a user sees and does -----------------------------------------------------------
# check_lanes NAME JSON WHEN SHOWN HIDDEN: WHEN (before or after the click) the SHOWN timeline
# (cpu or vcpu) is displayed and its lane is what is on screen there; the HIDDEN one takes no room.
check_lanes() {
  local name=$1 page=$2 when=$3 shown=$4 hidden=$5
  assert_eq "$name: $when the click, the $shown lanes are displayed and on screen" "block rect true" \
    "$(json_eval "$page" "(lambda v: v['display'] + ' ' + v['hit']['tag'] + ' ' + show(v['hit']['in_this']))(d['$when']['$shown'])")"
  assert_eq "$name: $when the click, the $hidden lanes are hidden" "none 0" \
    "$(json_eval "$page" "(lambda v: v['display'] + ' ' + str(round(v['height'])))(d['$when']['$hidden'])")"
}

# check_page NAME JSON: the page as loaded and after clicking the "vCPU lanes" toggle.
check_page() {
  local name=$1 page=$2
  local load_ms
  load_ms=$(json_eval "$page" 'd["load_ms"]')
  assert_true "$name: loads in Chromium within $MAX_LOAD_MS ms (took $load_ms ms)" \
    test "${load_ms:-999999}" -lt "$MAX_LOAD_MS"
  assert_eq "$name: no console errors" "" "$(json_eval "$page" '"; ".join(d["console_errors"])')"
  check_lanes "$name" "$page" before cpu vcpu
  assert_eq "$name: the toggle is on screen, not covered" true \
    "$(json_eval "$page" 'd["button"]["on_top"]')"
  assert_contains "$name: the toggle says what it shows" "$(json_eval "$page" 'd["button"]["text"]')" "vCPU lanes"
  check_lanes "$name" "$page" after vcpu cpu
  assert_eq "$name: every bar has a tooltip" 0 "$(json_eval "$page" 'd["untitled"]')"
  assert_true "$name: there are bars with tooltips" test "$(json_eval "$page" 'd["titles"]')" -gt 64
  assert_match "$name: a host-CPU bar's tooltip names the CPU, VM, vCPU and time" \
    "$(json_eval "$page" 'd["tooltip"]["cpu"]')" '^CPU [0-9]+ · .+ vCPU [0-9]+ · [0-9.]+–[0-9.]+ s'
  assert_match "$name: a vCPU bar's tooltip names the vCPU and the CPU" \
    "$(json_eval "$page" 'd["tooltip"]["vcpu"]')" '^.+ vCPU [0-9]+ · on CPU [0-9]+ · '
  assert_eq "$name: every heat-map cell has a tooltip" 4096 "$(json_eval "$page" 'd["heatmap_titles"]')"
}
check_page "hour" "$PAGE"
assert_true "hour: screenshots before and after the click" \
  test -s "$TEST_TMP/hour-before.png" -a -s "$TEST_TMP/hour-after.png"
files_differ() { ! cmp -s "$1" "$2"; }
assert_true "hour: the click changed what is on screen" \
  files_differ "$TEST_TMP/hour-before.png" "$TEST_TMP/hour-after.png"

# --- a busy exact-mode minute --------------------------------------------------------------
timed "$TEST_TMP/exact-html" "$VCPUMAP" report "$TEST_TMP/exact.rec" --html "$TEST_TMP/exact.html"
assert_eq "report --html of the exact minute exits 0" 0 "$?"
read -r EXACT_WALL _ _ EXACT_RSS_KIB <"$TEST_TMP/exact-html.time"
python3 "$DRIVER" "$CHROMIUM" "$TEST_TMP/exact.html" >"$TEST_TMP/exact.json" ||
  fatal "driving Chromium over the DevTools protocol failed (exact.html)"
EXACT=$(<"$TEST_TMP/exact.json")
check_page "exact" "$EXACT"

say "hour: $HOUR_BYTES B recording; report --html ${WALL} s wall, $(py 'round(float(sys.argv[1]) + float(sys.argv[2]), 2)' "$USER" "$SYS") s CPU, peak RSS $((RSS_KIB / 1024)) MiB; text report ${TEXT_WALL} s, $((TEXT_RSS_KIB / 1024)) MiB"
say "hour: HTML $HTML_BYTES B, $ELEMENTS SVG elements ($(json_eval "$PAGE" 'd["rects"]')), $COLUMNS columns of $COLUMN_S s; Chromium load $(json_eval "$PAGE" 'd["load_ms"]') ms, painted $(json_eval "$PAGE" 'd["painted_ms"]') ms"
say "6 min: $ELEMENTS_TENTH SVG elements at 100 ms, $ELEMENTS_DENSE at 10 ms"
say "exact: $(<"$TEST_TMP/exact.synth"); report --html ${EXACT_WALL} s, $((EXACT_RSS_KIB / 1024)) MiB; HTML $(stat -c %s "$TEST_TMP/exact.html") B, $(json_eval "$EXACT" 'd["svg_elements"]') SVG elements, load $(json_eval "$EXACT" 'd["load_ms"]') ms"
