#!/usr/bin/env bash
# Issue 13's benchmark: `vcpumap serve` beside Debian's prometheus-libvirt-exporter, in one run.
# Starts libvirt with scripts/libvirt-env.sh if none answers, defines and starts N TCG domains of
# V vCPUs (64 MiB, no disk; default 12 x 2), then pauses them: running TCG guests would burn both
# cores of this host and make every CPU figure noise, while a paused domain is still listed,
# described and its threads found by both exporters. Both exporters run at once; each second
# vcpumap is scraped, then half a second later the peer, S times (default 20). Per scrape:
# each exporter's own CPU (its threads' schedstat over the whole run, so work between scrapes
# counts too), libvirtd's CPU in the half second after each scrape (its threads' schedstat), and
# the median latency. Destroys and undefines its domains, stops only what it started, on exit.
# Usage: bench/libvirt_exporters.sh BUILD_DIR [N] [V] [S]
set -uo pipefail
BUILD=${1:?usage: bench/libvirt_exporters.sh BUILD_DIR [N] [V] [S]}
N=${2:-12}
V=${3:-2}
S=${4:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
PEER=/usr/bin/prometheus-libvirt-exporter
VIRSH=(virsh -c qemu:///system)
[[ -x $PEER ]] || { echo "bench: $PEER is missing: scripts/install-deps.sh test" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vcpumap-bench-libvirt.XXXXXX")
OURS=()
STARTED=()
cleanup() {
  for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  for name in "${OURS[@]}"; do
    "${VIRSH[@]}" destroy "$name" >/dev/null 2>&1
    "${VIRSH[@]}" undefine "$name" >/dev/null 2>&1
  done
  bash "$HERE/../scripts/libvirt-env.sh" stop >/dev/null
  rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A copy, so that a rebuild during the run does not change what runs.
VCPUMAP=$TMP/vcpumap
cp "$BUILD/src/cli/vcpumap" "$VCPUMAP" || exit 1
bash "$HERE/../scripts/libvirt-env.sh" start >/dev/null || { echo "bench: libvirt did not start" >&2; exit 1; }

for ((i = 0; i < N; i++)); do
  name=vcpumap-bench-$i
  "${VIRSH[@]}" domstate "$name" >/dev/null 2>&1 && { echo "bench: $name exists; not touching it" >&2; exit 1; }
  cat >"$TMP/$name.xml" <<XML
<domain type='qemu'>
  <name>$name</name>
  <uuid>6b1f0e0a-7c1d-4d0e-9a01-$(printf '%012x' $((0xbe00 + i)))</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu placement='static'>$V</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
  "${VIRSH[@]}" define "$TMP/$name.xml" >/dev/null || exit 1
  OURS+=("$name")
  "${VIRSH[@]}" start "$name" >/dev/null || exit 1
  "${VIRSH[@]}" suspend "$name" >/dev/null || exit 1
done

LIBVIRTD=$(sed -n 's/^libvirtd_pid=//p' /run/vcpumap-test/libvirt-started 2>/dev/null)
[[ -n $LIBVIRTD ]] || LIBVIRTD=$(pgrep -o -x libvirtd)
# --cache 0: every scrape takes a fresh snapshot (the default 1 s would answer every other scrape
# 1 s apart from the cache, and halve vcpumap's figure).
"$VCPUMAP" serve --listen 127.0.0.1:0 --cache 0 2>"$TMP/serve.log" &
STARTED+=($!)
VCPUMAP_PID=$!
for ((i = 0; i < 600; i++)); do grep -qs 'listening on' "$TMP/serve.log" && break; sleep 0.1; done
URL=$(grep -o 'http://[^ ]*/metrics' "$TMP/serve.log" | head -1)
[[ -n $URL ]] || { echo "bench: vcpumap serve did not start: $(cat "$TMP/serve.log")" >&2; exit 1; }
PEER_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PEER" --web.listen-address "127.0.0.1:$PEER_PORT" --libvirt.uri qemu:///system >"$TMP/peer.log" 2>&1 &
STARTED+=($!)
PEER_PID=$!

python3 "$HERE/libvirt_scrape.py" "$S" "$LIBVIRTD" \
  "$VCPUMAP_PID" "$URL" "$PEER_PID" "http://127.0.0.1:$PEER_PORT/metrics" >"$TMP/figures" ||
  { echo "bench: the scrapes did not complete; peer: $(tail -2 "$TMP/peer.log")" >&2; exit 1; }
read -r v_own v_libvirtd v_latency v_series p_own p_libvirtd p_latency p_series v_snapshots <"$TMP/figures"
python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$URL" >"$TMP/last"
calls=$(awk '$1 == "vcpumap_libvirt_calls_total" { print $2 }' "$TMP/last")
# vcpumap exports every VM of the host, the peer only libvirt's: other users' VMs add to
# vcpumap's figures alone.
others=$(($(grep -c '^vcpumap_vm_info{' "$TMP/last") - N))

python3 - <<PY
N, V, S = $N, $V, $S
v_own, v_lv, v_lat, v_series, v_snapshots = $v_own, $v_libvirtd, $v_latency, $v_series, $v_snapshots
p_own, p_lv, p_lat, p_series = $p_own, $p_libvirtd, $p_latency, $p_series


def verdict(met, by):
    return "met" if met else f"MISSED by {by}"


def ms(seconds):
    return f"{seconds * 1e3:.2f} ms"


print(f"{N} paused TCG domains x {V} vCPUs, {S} scrapes of each 1 s apart; "
      f"load $(cut -d' ' -f1-3 /proc/loadavg), $others other VMs on the host (vcpumap exports them)")
print(f"    vcpumap serve: own {ms(v_own)} + libvirtd {ms(v_lv)} a scrape, median latency "
      f"{ms(v_lat)}, {v_series} series; {v_snapshots} snapshots for {S} scrapes "
      f"({ms(v_own * S / v_snapshots)} each); libvirt calls since start: ${calls:-n/a}")
print(f"    prometheus-libvirt-exporter: own {ms(p_own)} + libvirtd {ms(p_lv)} a scrape, median "
      f"latency {ms(p_lat)}, {p_series} series")
ratio = (v_own + v_lv) / (p_own + p_lv)
print(f"    vcpumap + libvirtd / peer + libvirtd {ratio:.2f}x (target <= 0.5: "
      f"{verdict(ratio <= 0.5, f'{ratio - 0.5:.2f}x')})")
print(f"    libvirtd per vcpumap scrape {ms(v_lv)} (target < 1 ms: "
      f"{verdict(v_lv < 1e-3, ms(v_lv - 1e-3))})")
print(f"    median latency vcpumap / peer {v_lat / p_lat:.2f}x (target <= 1: "
      f"{verdict(v_lat <= p_lat, ms(v_lat - p_lat))})")
PY
