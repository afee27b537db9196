#!/usr/bin/env bash
# Proxmox VE, KubeVirt and Firecracker hosts as vcpumap meets them: look-alike processes (fake_guest)
# started with each platform's real command line, a fixture root holding Proxmox's
# etc/pve/qemu-server/4711.conf (its proc and sys are this host's), and pod cgroups the test makes
# (the kubelet's systemd layout in cgroup v2; its cgroupfs layout in a v1 hierarchy where the host
# has one, else through a fixture root), removed on exit. Checks the VMID, name and affinity
# (audit's pin-drift with the threads drifted, then re-applied, and emulator-on-vcpu-cpu),
# `vcpuinfo 4711`, KubeVirt's namespace, name and pod UID under both layouts and NAMESPACE/NAME,
# a KubeVirt VM's status file inside its pod (own PID and mount namespaces: vCPU threads by NSpid,
# dedicatedCpuPlacement's pins audited and fixed),
# Firecracker's --id, the new labels in /metrics (promtool check metrics), and that a running serve
# sees an edit of 4711.conf (its affinity, in /api/v1/snapshot) without a restart.
source "$(dirname "$0")/lib.sh"

find_fake_guest
(($(nproc) >= 2)) || skip "needs 2 CPUs (the affinity is CPU 1, the drift CPUs 0-1)"
[[ $EUID -eq 0 ]] || skip "needs root to make pod cgroups"
UNIFIED=/sys/fs/cgroup
[[ -f /sys/fs/cgroup/unified/cgroup.procs ]] && UNIFIED=/sys/fs/cgroup/unified
[[ -f $UNIFIED/cgroup.procs && $(stat -fc %T "$UNIFIED") == cgroup2fs ]] ||
  skip "no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified"
V1=/sys/fs/cgroup/pids  # a v1 hierarchy whose cgroups change nothing for the processes
[[ -f $V1/cgroup.procs && $(stat -fc %T "$V1") == cgroupfs ]] || V1=

POD_UID=8d3c9a0e-5b7f-4c2a-9e1d-$(printf '%012x' $$)
POD_UID_V1=1f2e3d4c-5b6a-4798-8a9b-$(printf '%012x' $$)
CONTAINER=4f2b8c1d9e7a$(printf '%08x' $$)
SYSTEMD_POD=$UNIFIED/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID//-/_}.slice
SYSTEMD_CGROUP=$SYSTEMD_POD/cri-containerd-$CONTAINER.scope
CGROUPFS_CGROUP=${V1:+$V1/kubepods/besteffort/pod$POD_UID_V1/$CONTAINER}
MADE=()  # cgroups made here, deepest last

make_cgroup() {  # make_cgroup PATH: makes PATH and the folders above it that are missing
  local path=$1 missing=()
  while [[ ! -d $path ]]; do missing=("$path" "${missing[@]}"); path=$(dirname "$path"); done
  for path in "${missing[@]}"; do mkdir "$path" || fatal "cannot make cgroup $path"; MADE+=("$path"); done
}

eval "lib_exit_hook() $(declare -f guests_exit_hook | tail -n +2)"
guests_exit_hook() {  # runs after every process started here was stopped
  local i
  for ((i = ${#MADE[@]} - 1; i >= 0; i--)); do
    rmdir "${MADE[i]}" 2>/dev/null || echo "cgroup ${MADE[i]} was not removed" >&2
  done
  lib_exit_hook "$1"
}

# start_as ARGV0 LABEL ARGS...: fake_guest under another program name; sets PID_OF_LAST once its
# threads are named.
start_as() {
  local argv0=$1 label=$2 out="$TEST_TMP/$2.out" i
  shift 2
  start_background_as "$argv0" "$FAKE_GUEST" "$@" >"$out"
  for ((i = 0; i < 200; i++)); do [[ -s "$out" ]] && break; sleep 0.05; done
  PID_OF_LAST=$(head -n1 "$out")
  [[ "$PID_OF_LAST" == "$BG_PID" ]] || fatal "fake_guest $label: printed '$PID_OF_LAST', started $BG_PID"
}

# vm_in FILE PID PY_EXPR: vm_eval over a `list --json` saved in FILE (other sessions' guests can
# make the document too long for an argument).
vm_in() {
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
v = next(x for x in d["vms"] if x["pid"] == int(sys.argv[2]))
r = eval(sys.argv[3])
print("null" if r is None else ",".join(map(str, r)) if isinstance(r, list) else str(r).lower() if isinstance(r, bool) else r)
' "$1" "$2" "$3"
}

# --- Proxmox VE -------------------------------------------------------------------------------

# A root whose proc and sys are this host's, with Proxmox's config of VMID 4711.
ROOT=$TEST_TMP/root
mkdir -p "$ROOT/etc/pve/qemu-server"
ln -s /proc "$ROOT/proc"
ln -s /sys "$ROOT/sys"
cat >"$ROOT/etc/pve/qemu-server/4711.conf" <<'CONF'
boot: order=scsi0
cores: 1
sockets: 1
affinity: 1
cpuunits: 2048
memory: 2048
name: web01
numa: 0
scsi0: local-lvm:vm-4711-disk-0,size=32G

[before-upgrade]
affinity: 0
cores: 4
CONF
# The command line of qemu-server's config_to_command, shortened.
start_as kvm proxmox -id 4711 -name web01,debug-threads=on -no-shutdown \
  -chardev "socket,id=qmp,path=/var/run/qemu-server/4711.qmp,server=on,wait=off" \
  -pidfile /var/run/qemu-server/4711.pid -smp 1,sockets=1,cores=1,maxcpus=1 --threads 1
PVE_PID=$PID_OF_LAST
taskset -a -pc 0-1 "$PVE_PID" >/dev/null || fatal "cannot set the affinity of $PVE_PID"

expect_vcpumap --root "$ROOT" --no-libvirt list --json
LIST=$TEST_TMP/list-proxmox.json
cp "$OUT_FILE" "$LIST"
assert_eq "Proxmox VM: its name" "web01" "$(vm_in "$LIST" "$PVE_PID" "v['name']")"
assert_eq "Proxmox VM: its VMID" "4711" "$(vm_in "$LIST" "$PVE_PID" "v['proxmox']['vmid']")"
assert_eq "Proxmox VM: the config's affinity, cores, cpuunits, numa; sockets as written" \
  "1 1 2048 false 1" \
  "$(vm_in "$LIST" "$PVE_PID" "' '.join(str(v['proxmox'][k]).lower() for k in ('affinity','cores','cpuunits','numa','sockets'))")"
assert_eq "Proxmox VM: no cpulimit in the config is null" "null" \
  "$(vm_in "$LIST" "$PVE_PID" "v['proxmox']['cpulimit']")"
assert_eq "Proxmox VM: not KubeVirt's" "null" "$(vm_in "$LIST" "$PVE_PID" "v['kubevirt']")"

expect_vcpumap --root "$ROOT" --no-libvirt vcpuinfo 4711
assert_match "vcpuinfo 4711 finds the VM by its VMID" "$OUT" "^VCPU: +0"
VCPU_TID=$(thread_tid "$PVE_PID" "CPU 0/KVM")
expect_vcpumap --root "$ROOT" --no-libvirt vcpuinfo 4711 --json
assert_eq "vcpuinfo 4711 --json: the Proxmox VM's vCPU thread" "$VCPU_TID" \
  "$(json_eval "$OUT" "d['vcpus'][0]['tid']")"

# Drifted: every thread may run on CPUs 0-1 where the config says CPU 1.
run_vcpumap --root "$ROOT" --no-libvirt audit --json "$PVE_PID"
AUDIT=$OUT
drift() { json_eval "$1" "[f['fix'] for f in d['findings'] if f['rule'] == 'pin-drift' and 'affinity in 4711.conf' in f['message']]"; }
assert_eq "audit: the drift from 4711.conf's affinity, fixed with taskset --all-tasks" \
  "taskset --cpu-list --all-tasks --pid 1 $PVE_PID" "$(drift "$AUDIT")"
assert_eq "audit: a drift is a finding (exit 1)" "1" "$STATUS"

# The fix applied as given: nothing drifts; the emulator threads share the vCPU's CPU because the
# affinity covers them too, and the finding gives the per-thread pinning.
eval "$(drift "$AUDIT")" >/dev/null || fatal "the fix did not run: $(drift "$AUDIT")"
assert_eq "the fix put the vCPU and the main thread on CPU 1" "1,1" \
  "$(cpu_list_of "$VCPU_TID"),$(cpu_list_of "$PVE_PID")"
run_vcpumap --root "$ROOT" --no-libvirt audit --json "$PVE_PID"
AUDIT=$OUT
assert_eq "audit after the fix: no drift from 4711.conf" "" "$(drift "$AUDIT")"
EMULATOR=$(json_eval "$AUDIT" "[f for f in d['findings'] if f['rule'] == 'emulator-on-vcpu-cpu' and f['vm'] == 'web01'][0]")
assert_contains "emulator-on-vcpu-cpu explains Proxmox's affinity" "$EMULATOR" \
  "applies to every thread of the VM, emulator threads included"
assert_contains "emulator-on-vcpu-cpu gives the per-thread fix" "$EMULATOR" \
  "vcpumap emulatorpin web01"
SHARED_FIXES=$(json_eval "$AUDIT" "[f['rule'] for f in d['findings'] if not f['fix']]")
assert_eq "audit: every finding for the Proxmox VM has a fix" "" "$SHARED_FIXES"

# --- KubeVirt ---------------------------------------------------------------------------------

# virt-launcher's libvirt names the domain NAMESPACE_NAME; QEMU runs in the pod's cgroup.
start_as qemu-kvm kubevirt -name guest=tenant-a_db-vm,debug-threads=on \
  -uuid 5d7c2c84-2b35-5b7a-9a29-3a3d3c7a8e11 --threads 2
KV_PID=$PID_OF_LAST
make_cgroup "$SYSTEMD_CGROUP"
echo "$KV_PID" >"$SYSTEMD_CGROUP/cgroup.procs" || fatal "cannot move $KV_PID into $SYSTEMD_CGROUP"
if [[ -n $V1 ]]; then
  start_as qemu-kvm kubevirt-v1 -name guest=tenant-b_cache,debug-threads=on --threads 1
  KV1_PID=$PID_OF_LAST
  make_cgroup "$CGROUPFS_CGROUP"
  echo "$KV1_PID" >"$CGROUPFS_CGROUP/cgroup.procs" || fatal "cannot move $KV1_PID into $CGROUPFS_CGROUP"
fi

expect_vcpumap --no-libvirt list --json
LIST=$TEST_TMP/list-kubevirt.json
cp "$OUT_FILE" "$LIST"
assert_eq "KubeVirt VM (systemd driver, cgroup v2): namespace, name, pod UID" \
  "tenant-a db-vm $POD_UID" \
  "$(vm_in "$LIST" "$KV_PID" "' '.join(v['kubevirt'][k] for k in ('namespace','name','pod_uid'))")"
assert_eq "KubeVirt VM: its vCPUs as before" "2" "$(vm_in "$LIST" "$KV_PID" "len(v['vcpus'])")"
if [[ -n $V1 ]]; then
  assert_eq "KubeVirt VM (cgroupfs driver, cgroup v1): namespace, name, pod UID" \
    "tenant-b cache $POD_UID_V1" \
    "$(vm_in "$LIST" "$KV1_PID" "' '.join(v['kubevirt'][k] for k in ('namespace','name','pod_uid'))")"
else
  # A host without a v1 hierarchy can't put a process in one: the fixture roots of the unit tests
  # (PodCgroup.*, PlatformSnapshot.*) read that layout.
  say "no cgroup v1 hierarchy here: the cgroupfs v1 layout is checked by the unit tests only"
fi
expect_vcpumap --no-libvirt vcpuinfo tenant-a/db-vm --json
assert_eq "vcpuinfo NAMESPACE/NAME finds the KubeVirt VM" "2" "$(json_eval "$OUT" "len(d['vcpus'])")"
run_vcpumap --no-libvirt vcpuinfo tenant-a/nosuch
assert_eq "an unknown NAMESPACE/NAME is a bad input" "2" "$STATUS"
assert_contains "the error says how VMs are named" "$ERR" "NAMESPACE/NAME"

# --- KubeVirt: the pod's libvirt status file ---------------------------------------------------

# QEMU without debug-threads (every thread "qemu-kvm") as pid 1 of its own PID namespace, in a
# mount namespace whose /run is a tmpfs: only its pod sees the status file, and the thread ids in
# it are the pod's. The non-root virt-launcher's path, dedicatedCpuPlacement's pins.
for tool in unshare nsenter; do
  command -v "$tool" >/dev/null || fatal "$tool (util-linux) is needed for the pod's namespaces"
done
POD_UID_C=3c4d5e6f-7a8b-4c9d-8e0f-$(printf '%012x' $$)
POD_CGROUP=$UNIFIED/kubepods.slice/kubepods-pod${POD_UID_C//-/_}.slice/cri-containerd-${CONTAINER}c.scope
POD_OUT=$TEST_TMP/pod-qemu.out
start_background unshare --pid --fork --kill-child --mount --mount-proc --propagation private \
  bash -c 'mount -t tmpfs kubevirt-run /run && exec -a qemu-kvm "$@"' pod-qemu "$FAKE_GUEST" \
  -name guest=tenant-c_pinned -uuid 7e1f0c2a-4b3d-4e5f-8a9b-0c1d2e3f4a5b --threads 0 \
  --name-thread qemu-kvm --name-thread qemu-kvm --name-thread qemu-kvm >"$POD_OUT"
UNSHARE_PID=$BG_PID
for ((i = 0; i < 200; i++)); do [[ -s "$POD_OUT" ]] && break; sleep 0.05; done
[[ $(head -n1 "$POD_OUT") == 1 ]] || fatal "the pod's QEMU is not pid 1 of its namespace: $(cat "$POD_OUT")"
POD_PID=$(</proc/"$UNSHARE_PID"/task/"$UNSHARE_PID"/children)
POD_PID=${POD_PID// /}
[[ $POD_PID =~ ^[0-9]+$ ]] || fatal "no child of unshare $UNSHARE_PID"
remember_started "$POD_PID"
make_cgroup "$POD_CGROUP"
echo "$POD_PID" >"$POD_CGROUP/cgroup.procs" || fatal "cannot move $POD_PID into $POD_CGROUP"
mapfile -t HOST_TIDS < <(printf '%s\n' /proc/"$POD_PID"/task/* | sed 's|.*/||' | sort -n)
mapfile -t POD_TIDS < <(nsenter -t "$POD_PID" -m ls /proc/1/task | sort -n)
((${#HOST_TIDS[@]} == 4 && ${#POD_TIDS[@]} == 4)) ||
  fatal "the pod's QEMU has threads ${HOST_TIDS[*]} (host), ${POD_TIDS[*]} (pod); 4 expected"
[[ ${POD_TIDS[2]} != "${HOST_TIDS[2]}" ]] || fatal "the pod's thread ids are the host's"
STATUS_PATH=/run/libvirt/qemu/run/tenant-c_pinned.xml
nsenter -t "$POD_PID" -m sh -c "mkdir -p ${STATUS_PATH%/*} && cat >$STATUS_PATH" <<XML ||
<domstatus state='running' reason='booted' pid='${POD_TIDS[0]}'>
  <taint flag='custom-monitor'/>
  <monitor path='/var/run/kubevirt-private/libvirt/qemu/lib/domain-1-tenant-c_pinned/monitor.sock' type='unix'/>
  <vcpus>
    <vcpu id='0' pid='${POD_TIDS[2]}'/>
    <vcpu id='1' pid='${POD_TIDS[3]}'/>
  </vcpus>
  <domain type='kvm' id='1'>
    <name>tenant-c_pinned</name>
    <vcpu placement='static'>2</vcpu>
    <cputune>
      <vcpupin vcpu='0' cpuset='1'/>
      <vcpupin vcpu='1' cpuset='0'/>
      <emulatorpin cpuset='0'/>
    </cputune>
  </domain>
</domstatus>
XML
  fatal "cannot write $STATUS_PATH in the pod's mount namespace"
[[ ! -e $STATUS_PATH ]] || fatal "$STATUS_PATH is visible outside the pod"
taskset -a -pc 0-1 "$POD_PID" >/dev/null || fatal "cannot set the affinity of $POD_PID"

expect_vcpumap --no-libvirt list --json
LIST=$TEST_TMP/list-kubevirt-status.json
cp "$OUT_FILE" "$LIST"
assert_eq "KubeVirt status file: read in the pod at the non-root launcher's path" "$STATUS_PATH" \
  "$(vm_in "$LIST" "$POD_PID" "v['kubevirt']['status_file']")"
assert_eq "KubeVirt status file: the vCPUs come from it" "libvirt-status libvirt-status" \
  "$(vm_in "$LIST" "$POD_PID" "v['vcpu_source'] + ' ' + v['kubevirt']['vcpu_source']")"
assert_eq "KubeVirt status file: its pod tids are the host's vCPU threads (NSpid)" \
  "${HOST_TIDS[2]},${HOST_TIDS[3]}" "$(vm_in "$LIST" "$POD_PID" "[t['tid'] for t in v['vcpus']]")"
assert_eq "KubeVirt status file: dedicatedCpuPlacement's pins" "[1],[0] [0]" \
  "$(vm_in "$LIST" "$POD_PID" "','.join(map(str, v['kubevirt']['vcpupin'])) + ' ' + str(v['kubevirt']['emulatorpin'])")"
assert_eq "KubeVirt status file: no notes" "" "$(vm_in "$LIST" "$POD_PID" "v['notes']")"
expect_vcpumap --no-libvirt vcpuinfo tenant-c/pinned
assert_match "vcpuinfo tenant-c/pinned lists vCPU 1" "$OUT" "VCPU: +1"
expect_vcpumap --no-libvirt vcpuinfo tenant-c/pinned --json
assert_eq "vcpuinfo --json: vCPU 1's thread" "${HOST_TIDS[3]}" "$(json_eval "$OUT" "d['vcpus'][1]['tid']")"

# Every thread may run on CPUs 0-1: each pin drifts; the fixes move the threads where the pod's
# libvirt put them, and then nothing drifts.
pod_drift() { json_eval "$1" "sorted(f['fix'] for f in d['findings'] if f['rule'] == 'pin-drift' and f['vm'] == 'tenant-c_pinned')"; }
run_vcpumap --no-libvirt audit --json "$POD_PID"
FIXES=$(pod_drift "$OUT")
assert_eq "audit: the pod's pins drifted, with their fixes" \
  "vcpumap emulatorpin tenant-c_pinned 0,vcpumap vcpupin tenant-c_pinned 0 1,vcpumap vcpupin tenant-c_pinned 1 0" \
  "$FIXES"
IFS=, read -ra fixes <<<"$FIXES"
for fix in "${fixes[@]}"; do
  read -ra words <<<"${fix#vcpumap }"
  expect_vcpumap --no-libvirt "${words[@]}"
done
assert_eq "the fixes put vCPU 0 on CPU 1, vCPU 1 and the emulator threads on CPU 0" "1 0 0 0" \
  "$(cpu_list_of "${HOST_TIDS[2]}") $(cpu_list_of "${HOST_TIDS[3]}") $(cpu_list_of "$POD_PID") $(cpu_list_of "${HOST_TIDS[1]}")"
run_vcpumap --no-libvirt audit --json "$POD_PID"
assert_eq "audit after the fixes: no drift from the pod's pins" "" "$(pod_drift "$OUT")"

# --- Firecracker --------------------------------------------------------------------------------

start_as firecracker firecracker --id mvm-a1 --api-sock "$TEST_TMP/fc.sock" --threads 0 \
  --name-thread "fc_vcpu 0" --name-thread "fc_vcpu 1" --name-thread fc_api
FC_PID=$PID_OF_LAST
expect_vcpumap --no-libvirt list --json
LIST=$TEST_TMP/list-firecracker.json
cp "$OUT_FILE" "$LIST"
assert_eq "Firecracker microVM: named by --id" "mvm-a1" "$(vm_in "$LIST" "$FC_PID" "v['name']")"
assert_eq "Firecracker microVM: its vCPUs" "0,1" \
  "$(vm_in "$LIST" "$FC_PID" "[t['vcpu'] for t in v['vcpus']]")"
assert_eq "Firecracker microVM: no platform sections" "null null" \
  "$(vm_in "$LIST" "$FC_PID" "' '.join(str(v[k]) for k in ('proxmox','kubevirt')).replace('None','null')")"

# --- the labels in /metrics ---------------------------------------------------------------------

if command -v promtool >/dev/null; then
  start_exporter "$TEST_TMP/serve.log" --root "$ROOT"
  python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=10).read())' \
    "$EXPORTER" >"$TEST_TMP/metrics.txt" || fatal "cannot scrape $EXPORTER/metrics"
  METRICS=$(<"$TEST_TMP/metrics.txt")
  assert_match "/metrics: proxmox_vmid on the Proxmox VM's series" "$METRICS" \
    'vcpumap_vm_vcpus\{vm="web01",uuid="",proxmox_vmid="4711"\} 1'
  assert_contains "/metrics: namespace, kubevirt_vm and pod_uid on the KubeVirt VM's series" "$METRICS" \
    "vm=\"tenant-a_db-vm\",uuid=\"5d7c2c84-2b35-5b7a-9a29-3a3d3c7a8e11\",namespace=\"tenant-a\",kubevirt_vm=\"db-vm\",pod_uid=\"$POD_UID\""
  assert_contains "/metrics: the Firecracker VM by its id" "$METRICS" 'vm="mvm-a1"'
  lint=$(promtool check metrics <"$TEST_TMP/metrics.txt" 2>&1)
  assert_eq "promtool check metrics passes with the new labels" "0:" "$?:$lint"
else
  say "promtool is not installed (Debian package prometheus): /metrics labels not checked"
  fail "promtool is needed to check the labels"
fi

# --- an edit of the config while serve runs ------------------------------------------------------

# serve_affinity: the Proxmox VM's config affinity in serve's /api/v1/snapshot (the list document).
serve_affinity() {
  python3 -c '
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/snapshot", timeout=10))
v = next(x for x in d["vms"] if x["pid"] == int(sys.argv[2]))
print(v["proxmox"]["affinity"] if v["proxmox"]["config"] else "no config")
' "$EXPORTER" "$PVE_PID"
}
[[ -n ${EXPORTER:-} ]] || start_exporter "$TEST_TMP/serve.log" --root "$ROOT"
assert_eq "serve: the config's affinity before the edit" "1" "$(serve_affinity)"
sed -i 's/^affinity: 1$/affinity: 0-1/' "$ROOT/etc/pve/qemu-server/4711.conf"
for ((i = 0; i < 100; i++)); do [[ $(serve_affinity) == 0-1 ]] && break; sleep 0.1; done
assert_eq "serve sees the edited affinity of 4711.conf without a restart" "0-1" "$(serve_affinity)"
sed -i 's/^affinity: 0-1$/affinity: x/' "$ROOT/etc/pve/qemu-server/4711.conf"
for ((i = 0; i < 100; i++)); do [[ $(serve_affinity) == "no config" ]] && break; sleep 0.1; done
assert_eq "serve: a config broken by an edit is no config (and a note), not the old one" \
  "no config" "$(serve_affinity)"
