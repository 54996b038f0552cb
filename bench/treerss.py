#!/usr/bin/env python3
"""treerss.py - runs a command and records the peak of the summed resident memory of it and
every process below it (tally runs its tasks in executor processes: the RSS GNU time reports
is that of the largest single process, not of the job).

usage: bench/treerss.py OUTFILE CMD [ARGS...]

Samples /proc every 20 ms; writes the peak in KiB to OUTFILE and exits with CMD's status.
A peak shorter than a sampling interval can be missed, so the figure is a lower bound of the
true peak, and an upper bound of the job's own use by the few MiB of wrappers it includes.
"""
import os
import subprocess
import sys
import time


def tree_rss_kib(root):
    children = {}
    rss = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{name}/statm") as f:
                resident = int(f.read().split()[1])
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        pid = int(name)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = resident * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def main():
    if len(sys.argv) < 3:
        print("usage: treerss.py OUTFILE CMD [ARGS...]", file=sys.stderr)
        return 2
    proc = subprocess.Popen(sys.argv[2:])
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kib(proc.pid))
        time.sleep(0.02)
    with open(sys.argv[1], "w") as f:
        f.write(f"{peak}\n")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
