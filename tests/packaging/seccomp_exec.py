#!/usr/bin/python3
"""seccomp_exec.py COMMAND...: runs COMMAND under the system call filter that the unit's
SystemCallFilter= lines in $UNIT_SYSCALL_FILTER give (the lines themselves, passed in the
environment so that a sandbox's private /tmp does not hide the unit file) (groups resolved by `systemd-analyze syscall-filter`, as systemd does:
the first line an allow list, each later "~" line taken out of it; anything else fails with
EPERM, as SystemCallErrorNumber=EPERM says). For test_exporter_sandbox.sh, where systemd is not
PID 1 and so can't run the unit itself."""
import errno
import os
import subprocess
import sys

import seccomp


def groups():
    """Each group of `systemd-analyze syscall-filter`: its members (calls and nested groups)."""
    out, current = {}, None
    for line in subprocess.run(["systemd-analyze", "syscall-filter"], check=True,
                               capture_output=True, text=True).stdout.splitlines():
        if line.startswith("@"):
            current = out.setdefault(line.strip(), [])
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return out


def expand(names, table):
    calls = set()
    for name in names:
        if name.startswith("@"):
            calls |= expand(table[name], table)
        else:
            calls.add(name)
    return calls


def unit_filter(lines):
    allowed, table = None, groups()
    for line in lines:
        key, _, value = line.strip().partition("=")
        if key != "SystemCallFilter":
            continue
        deny = value.startswith("~")
        calls = expand(value.lstrip("~").split(), table)
        if deny:
            allowed = (allowed if allowed is not None else set()) - calls
        else:
            allowed = calls if allowed is None else allowed | calls
    # systemd lets these through whatever the list says (systemd.exec(5)).
    return (allowed or set()) | {"execve", "exit", "exit_group", "getrlimit", "rt_sigreturn"}


def main():
    command = sys.argv[1:]
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    for call in sorted(unit_filter(os.environ["UNIT_SYSCALL_FILTER"].splitlines())):
        try:
            f.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError, OSError):
            pass  # a call this architecture does not have (e.g. the _time64 ones on x86-64)
    f.load()
    os.execvp(command[0], command)


main()
