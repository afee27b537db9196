"""What the bench scripts read of a process in /proc."""
import glob


def cpu_ns(pid):
    """The CPU time of all of `pid`'s threads (their schedstat's first field, ns)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended between the listing and the read
    return total
