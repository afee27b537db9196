"""Runs commands R times each, interleaved (one round runs every command once, so load from
elsewhere on the machine falls on all of them alike), and prints per command, one line each, the
median CPU time (user+sys, s), the peak RSS (KiB) of the whole process, from wait4's rusage, and
the lowest and highest CPU time of the R runs (the spread that other load caused).

Usage: measure.py R COMMAND... [--- COMMAND...]..."""
import os, statistics, subprocess, sys


def run_once(command):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"measure: {' '.join(command[:4])}... exited {status}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def split_commands(words):
    commands, current = [], []
    for word in words:
        if word == "---":
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    return [command for command in commands if command]


if __name__ == "__main__":
    repeats = int(sys.argv[1])
    commands = split_commands(sys.argv[2:])
    cpu = [[] for _ in commands]
    rss = [0 for _ in commands]
    for _ in range(repeats):
        for i, command in enumerate(commands):
            seconds, kib = run_once(command)
            cpu[i].append(seconds)
            rss[i] = max(rss[i], kib)
    for i in range(len(commands)):
        print(f"{statistics.median(cpu[i]):.6f} {rss[i]} {min(cpu[i]):.6f} {max(cpu[i]):.6f}")
