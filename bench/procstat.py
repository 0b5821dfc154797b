"""CPU time of processes and of the whole machine, read from /proc (Linux only).

The load generator shares the machine with what it measures; counting each side's CPU over the
measured window shows whether the client starved the servers and what a request costs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2:].split()


def process_cpu(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds of one process, all its threads (0 if it is gone); with `reaped`,
    plus that of its children that have exited (PostgreSQL backends come and go with pools)."""
    f = _stat_fields(pid)
    if not f:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if reaped else 0)
    return ticks / _TICK


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (PostgreSQL's backends are the postmaster's children)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            f = _stat_fields(int(entry.name))
            if f:
                parents.setdefault(int(f[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out.extend(kids)
        todo.extend(kids)
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


@dataclass
class CpuGroups:
    """Named sets of processes; `tree` groups count their descendants too, looked up per sample
    so that connections opened meanwhile are not missed."""

    pids: dict[str, list[int]] = field(default_factory=dict)
    trees: set[str] = field(default_factory=set)

    def add(self, name: str, pid: int, *, tree: bool = False) -> None:
        self.pids.setdefault(name, []).append(pid)
        if tree:
            self.trees.add(name)

    def sample(self) -> tuple[dict[str, float], tuple[int, int]]:
        out: dict[str, float] = {}
        for name, roots in self.pids.items():
            total = 0.0
            for root in roots:
                tree = name in self.trees
                total += process_cpu(root, reaped=tree)
                if tree:
                    total += sum(process_cpu(p) for p in children(root))
            out[name] = total
        return out, machine_ticks()


def delta(
    before: tuple[dict[str, float], tuple[int, int]], after: tuple[dict[str, float], tuple[int, int]]
) -> tuple[dict[str, float], float, float]:
    """CPU seconds per group between two samples, and the machine's busy and total CPU seconds
    (all cores, every process: what is busy beyond the groups is other work on the machine)."""
    cpu = {k: after[0].get(k, 0.0) - v for k, v in before[0].items()}
    return cpu, (after[1][0] - before[1][0]) / _TICK, (after[1][1] - before[1][1]) / _TICK


# --- memory ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Memory:
    rss: int  # bytes resident
    pss: int  # resident, pages shared between processes split among them
    shared: int  # the PSS of shared memory segments (PostgreSQL's shared buffers)


def process_memory(pid: int) -> Memory:
    """The memory of one process in bytes; zeros when it is gone. Without /proc/<pid>/smaps_rollup
    (old kernels, another user's process) PSS falls back to RSS and shared memory to 0."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return Memory(0, 0, 0)
    except PermissionError:
        rollup = ""
    kib: dict[str, int] = {}
    for line in rollup.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss", "Pss_Shmem"):
            kib[name] = int(rest.split()[0])
    if "Rss" in kib and "Pss" in kib:
        return Memory(kib["Rss"] * 1024, kib["Pss"] * 1024, kib.get("Pss_Shmem", 0) * 1024)
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return Memory(0, 0, 0)
    rss = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return Memory(rss, rss, 0)


@dataclass
class MemoryGroups:
    """Named processes whose memory is sampled. A single process reports its RSS. A `tree` group
    (PostgreSQL: the postmaster and its backends) reports two sums of PSS over the tree: its own
    memory (`name`), and apart its shared memory (`name shared`: the shared buffers, which fill up
    as data is touched and are bounded by configuration, so they tell nothing of leaks); summing
    RSS instead would count the shared buffers once per backend."""

    pids: dict[str, int] = field(default_factory=dict)
    trees: set[str] = field(default_factory=set)
    processes: dict[str, int] = field(default_factory=dict)  # of each tree at the last sample

    def add(self, name: str, pid: int, *, tree: bool = False) -> None:
        self.pids[name] = pid
        if tree:
            self.trees.add(name)

    @property
    def shared_names(self) -> set[str]:
        return {f"{name} shared" for name in self.trees}

    def sample(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, pid in self.pids.items():
            if name in self.trees:
                tree = [process_memory(p) for p in (pid, *children(pid))]
                self.processes[name] = len(tree)
                out[name] = sum(m.pss - m.shared for m in tree)
                out[f"{name} shared"] = sum(m.shared for m in tree)
            else:
                out[name] = process_memory(pid).rss
        return out
