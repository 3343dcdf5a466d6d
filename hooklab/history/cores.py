"""How many cores a replay may hand work to: the cores this process may run on, and how many of
them sat idle over a while, read from /proc/stat (or, where that is not told, from the load of
the last minute)."""

from __future__ import annotations

import os
import time


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


CpuMark = tuple[float, float]  # the machine's idle seconds over all cores, and when read


def cpu_mark() -> CpuMark | None:
    """Where the machine's idle time stands now (from /proc/stat); None where it is not told."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()
        idle = (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")  # idle, iowait
    except (OSError, ValueError, IndexError):
        return None
    return idle, time.monotonic()


def idle_cores(since: CpuMark | None = None) -> int:
    """Cores free for workers, this process's own included (it waits while they render).

    Measured since `since` (a `cpu_mark()` taken as this process started its busy sample):
    the cores that sat idle meanwhile, and the one it kept busy. Without a mark, or over too
    short a while, by the load of the last minute, which lags: a replay just before raises it.
    """
    now = cpu_mark() if since is not None else None
    if since is not None and now is not None and now[1] - since[1] >= _SHORTEST_MEASURE:
        spare = (now[0] - since[0]) / (now[1] - since[1])
        return max(0, min(cores(), int(1 + spare + _ROUND_UP)))
    try:
        load = os.getloadavg()[0]
    except OSError:  # not known here
        return cores() - 1
    return max(0, int(cores() - max(load - 1.0, 0.0)))


# Idle time is counted in ticks of 10 ms: a while shorter than this tells too little; an idle
# core is one idle for at least 70% of the while.
_SHORTEST_MEASURE = 0.04
_ROUND_UP = 0.3
