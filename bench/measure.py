"""Runs a command R times and prints the median CPU time (user+sys, s) and peak RSS (KiB) of the
whole process, from wait4's rusage."""
import os, statistics, subprocess, sys

def measure(command, repeats):
    cpu, rss = [], []
    for _ in range(repeats):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"measure: {' '.join(command[:4])}... exited {status}")
        cpu.append(usage.ru_utime + usage.ru_stime)
        rss.append(usage.ru_maxrss)
    return statistics.median(cpu), max(rss)

if __name__ == "__main__":
    repeats = int(sys.argv[1])
    cpu, rss = measure(sys.argv[2:], repeats)
    print(f"{cpu:.6f} {rss}")
