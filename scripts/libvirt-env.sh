#!/usr/bin/env bash
# libvirt-env.sh start|stop|status — bring up a libvirt (virtlogd + libvirtd) that can run
# type='qemu' (TCG) domains for vcpumap's integration tests, and take down only what it started.
#
#   start   Apply the recipe from docs/DESIGN ("Seen working on these machines"):
#             /etc/libvirt/qemu.conf: user = "root", group = "root", dynamic_ownership = 0,
#             security_driver = "none" (idempotent; the original is kept once as
#             /etc/libvirt/qemu.conf.vcpumap-orig);
#             system group kvm and system user libvirt-qemu exist;
#             /var/log/libvirt exists;
#           then start `virtlogd -d` and `libvirtd -d`, each ONLY if it is not already running,
#           record what was started (PIDs, created user/group, conf edit) in the state file,
#           and wait (bounded) until `virsh -c qemu:///system version` answers.
#           If libvirt already answers on qemu:///system, nothing is started.
#   stop    Stop only the daemons recorded in the state file, by PID (after checking that the PID
#           still is that daemon), restore qemu.conf, remove the user/group and the runtime dir
#           /run/libvirt if this script changed/created them, and remove the state file.
#           A libvirtd found running is left alone. Left behind on purpose: /var/log/libvirt
#           (domain logs), /var/lib/libvirt and /var/cache/libvirt (libvirt's own state).
#   status  Print the state file and whether libvirt answers.
#
# Must run as root. Prints one line saying what it did. Exit status non-zero on failure.
# Environment: VCPUMAP_LIBVIRT_STATE_DIR (default /run/vcpumap-test),
#              VCPUMAP_LIBVIRT_WAIT (seconds to wait for virsh, default 30).

set -euo pipefail

STATE_DIR=${VCPUMAP_LIBVIRT_STATE_DIR:-/run/vcpumap-test}
STATE=$STATE_DIR/libvirt-started
CONF=/etc/libvirt/qemu.conf
BACKUP=$CONF.vcpumap-orig
URI=qemu:///system
WAIT=${VCPUMAP_LIBVIRT_WAIT:-30}
ME=libvirt-env.sh

die() { echo "$ME: $*" >&2; exit 1; }
join() { local out="" x; for x in "$@"; do out=${out:+$out; }$x; done; printf '%s' "$out"; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

# ---- state file: simple key=value lines --------------------------------------------------------
state_get() { # key -> value or empty
    [ -f "$STATE" ] || return 0
    sed -n "s/^$1=//p" "$STATE" | tail -n 1
}
state_set() { # key value
    mkdir -p "$STATE_DIR"
    touch "$STATE"
    local tmp
    tmp=$(mktemp "$STATE_DIR/.state.XXXXXX")
    grep -v "^$1=" "$STATE" >"$tmp" || true
    echo "$1=$2" >>"$tmp"
    mv "$tmp" "$STATE"
}

# is PID alive and is its command name NAME?
pid_is() { # pid name
    [ -n "$1" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

libvirt_answers() {
    timeout 5 virsh -c "$URI" version >/dev/null 2>&1
}

# ---- qemu.conf -------------------------------------------------------------------------------------
conf_value_ok() { # key value: is there an active line key = value (last one wins in libvirt)?
    local line
    line=$(grep -E "^[[:space:]]*$1[[:space:]]*=" "$CONF" | tail -n 1 || true)
    [ -n "$line" ] || return 1
    line=${line#*=}
    line=$(echo "$line" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
    [ "$line" = "$2" ]
}

conf_set() { # key value: comment out every active setting of key, append key = value
    sed -i -E "s/^([[:space:]]*$1[[:space:]]*=.*)$/#vcpumap# \1/" "$CONF"
    echo "$1 = $2" >>"$CONF"
}

apply_conf() { # prints "changed" or "unchanged"
    # Debian ships qemu.conf in libvirt-daemon-system, which the tests do not install (it pulls
    # in systemd units, polkit and a firewall): libvirtd runs on its defaults plus the lines below.
    [ -d "$(dirname "$CONF")" ] || die "$(dirname "$CONF") not found (is libvirt-daemon installed?)"
    if [ ! -f "$CONF" ]; then : >"$CONF"; state_set created_conf 1; fi
    local -a keys=(user group dynamic_ownership security_driver)
    local -a vals=('"root"' '"root"' '0' '"none"')
    local i need=0
    for i in 0 1 2 3; do
        conf_value_ok "${keys[$i]}" "${vals[$i]}" || need=1
    done
    if [ "$need" -eq 0 ]; then echo unchanged; return; fi
    if [ ! -e "$BACKUP" ]; then cp -p "$CONF" "$BACKUP"; fi
    {
        grep -q '^# added by vcpumap scripts/libvirt-env.sh' "$CONF" ||
            printf '\n# added by vcpumap scripts/libvirt-env.sh (original: %s)\n' "$BACKUP" >>"$CONF"
    }
    for i in 0 1 2 3; do
        conf_value_ok "${keys[$i]}" "${vals[$i]}" || conf_set "${keys[$i]}" "${vals[$i]}"
    done
    echo changed
}

# ---- start -----------------------------------------------------------------------------------------
start_daemon() { # name -> echoes pid of the daemon it started
    local name=$1 pidfile=/run/$1.pid pid="" i
    "/usr/sbin/$name" -d || die "$name -d failed (exit $?)"
    for i in $(seq 1 50); do
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if pid_is "$pid" "$name"; then echo "$pid"; return 0; fi
        sleep 0.1
    done
    die "$name -d did not leave a running process with pid file $pidfile"
}

do_start() {
    local did=() conf pid
    if libvirt_answers && ! [ -f "$STATE" ]; then
        echo "$ME: libvirt already answers on $URI; started nothing, changed nothing"
        return 0
    fi

    conf=$(apply_conf)
    if [ "$conf" = changed ]; then
        [ -n "$(state_get conf_changed)" ] || state_set conf_changed 1
        did+=("edited $CONF (backup $BACKUP)")
    fi

    if ! getent group kvm >/dev/null; then
        groupadd --system kvm
        state_set created_group kvm
        did+=("created group kvm")
    fi
    # libvirt 9's QEMU driver looks its default group up before it reads qemu.conf's group = .
    if ! getent group libvirt-qemu >/dev/null; then
        groupadd --system libvirt-qemu
        state_set created_group_libvirt_qemu 1
        did+=("created group libvirt-qemu")
    fi
    if ! getent passwd libvirt-qemu >/dev/null; then
        useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
            --gid kvm libvirt-qemu
        state_set created_user libvirt-qemu
        did+=("created user libvirt-qemu")
    fi
    mkdir -p /var/log/libvirt

    if [ ! -e /run/libvirt ] && [ -z "$(state_get created_run_libvirt)" ]; then
        state_set created_run_libvirt 1
    fi
    if pgrep -x virtlogd >/dev/null; then
        pid=$(state_get virtlogd_pid)
        if pid_is "$pid" virtlogd; then did+=("virtlogd already running (started here earlier, pid $pid)")
        else did+=("virtlogd already running (not ours, left alone)"); fi
    else
        pid=$(start_daemon virtlogd)
        state_set virtlogd_pid "$pid"
        did+=("started virtlogd pid $pid")
    fi
    if pgrep -x libvirtd >/dev/null; then
        if [ "$conf" = changed ]; then
            echo "$ME: warning: libvirtd was already running; its qemu.conf edits take effect only after it restarts" >&2
        fi
        pid=$(state_get libvirtd_pid)
        if pid_is "$pid" libvirtd; then did+=("libvirtd already running (started here earlier, pid $pid)")
        else did+=("libvirtd already running (not ours, left alone)"); fi
    else
        pid=$(start_daemon libvirtd)
        state_set libvirtd_pid "$pid"
        did+=("started libvirtd pid $pid")
    fi

    local t=0
    until libvirt_answers; do
        t=$((t + 1))
        if [ "$t" -gt "$WAIT" ]; then
            die "libvirt did not answer 'virsh -c $URI version' within ${WAIT}s ($(join "${did[@]}")); see /var/log/libvirt and 'journalctl'; run '$0 stop' to undo"
        fi
        sleep 1
    done
    did+=("$URI answers" "state in $STATE")
    echo "$ME: start: $(join "${did[@]}")"
}

# ---- stop ------------------------------------------------------------------------------------------
stop_pid() { # name pid -> echoes what it did
    local name=$1 pid=$2 i
    if ! pid_is "$pid" "$name"; then
        echo "$name pid $pid already gone"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        pid_is "$pid" "$name" || { echo "stopped $name pid $pid"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
    echo "killed $name pid $pid (did not stop on SIGTERM)"
}

do_stop() {
    if [ ! -f "$STATE" ]; then
        echo "$ME: stop: nothing recorded in $STATE; stopped nothing"
        return 0
    fi
    local did=() pid
    pid=$(state_get libvirtd_pid)
    [ -z "$pid" ] || did+=("$(stop_pid libvirtd "$pid")")
    pid=$(state_get virtlogd_pid)
    [ -z "$pid" ] || did+=("$(stop_pid virtlogd "$pid")")

    if [ -n "$(state_get conf_changed)" ] && [ -f "$BACKUP" ]; then
        if pgrep -x libvirtd >/dev/null; then
            did+=("kept edited $CONF (a libvirtd not started here is running)")
        elif [ -n "$(state_get created_conf)" ]; then
            rm -f "$BACKUP" "$CONF"
            did+=("removed $CONF (created here)")
        else
            mv -f "$BACKUP" "$CONF"
            did+=("restored $CONF")
        fi
    fi
    if [ -n "$(state_get created_run_libvirt)" ] && [ -d /run/libvirt ] &&
        ! pgrep -x libvirtd >/dev/null && ! pgrep -x virtlogd >/dev/null &&
        ! pgrep -x virtqemud >/dev/null; then
        rm -rf /run/libvirt
        did+=("removed /run/libvirt (runtime dir created by the libvirtd started here)")
    fi
    if [ "$(state_get created_user)" = libvirt-qemu ] && getent passwd libvirt-qemu >/dev/null; then
        userdel libvirt-qemu && did+=("removed user libvirt-qemu")
    fi
    if [ "$(state_get created_group)" = kvm ] && getent group kvm >/dev/null; then
        groupdel kvm && did+=("removed group kvm")
    fi
    if [ -n "$(state_get created_group_libvirt_qemu)" ] && getent group libvirt-qemu >/dev/null; then
        groupdel libvirt-qemu && did+=("removed group libvirt-qemu")
    fi
    rm -f "$STATE"
    rmdir "$STATE_DIR" 2>/dev/null || true
    [ "${#did[@]}" -gt 0 ] || did=("nothing to undo")
    echo "$ME: stop: $(join "${did[@]}"); removed $STATE"
}

do_status() {
    if [ -f "$STATE" ]; then echo "state ($STATE):"; sed 's/^/  /' "$STATE"; else echo "no state file ($STATE)"; fi
    if libvirt_answers; then echo "$URI answers"; else echo "$URI does not answer"; fi
}

case "${1:-}" in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
