"""Resident memory of a process tree, sampled from /proc (Linux; no psutil).

The tree's RSS is the sum of ``VmRSS`` over the root and every live descendant (the refresh's
Python process, dbt's subprocesses, ...). Pages shared between processes (libraries, fork
copies) are counted once per process, so the sum can overstate; it cannot miss a process that
was alive at a sample. A spike shorter than the interval can fall between samples: the kernel's
own per-process peak (``ru_maxrss`` of waited children) is reported beside it as a floor.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


def parent_pids(proc: Path = PROC) -> dict[int, int]:
    """``{pid: ppid}`` of every process visible now (processes that vanish mid-scan are skipped)."""
    parents = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")"
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(root: int, parents: dict[int, int]) -> set[int]:
    """``root`` and every process below it in ``parents`` (``{pid: ppid}``)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    tree, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in tree:
            continue
        tree.add(pid)
        stack.extend(children.get(pid, ()))
    return tree


def rss_bytes(pid: int, proc: Path = PROC) -> int:
    """``VmRSS`` of a process in bytes; 0 when it is gone or a kernel thread."""
    try:
        with open(proc / str(pid) / "status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree_rss_bytes(root: int, proc: Path = PROC) -> tuple[int, int]:
    """(summed RSS in bytes, number of processes) of ``root``'s tree now."""
    tree = descendants(root, parent_pids(proc)) if (proc / str(root)).exists() else set()
    return sum(rss_bytes(pid, proc) for pid in tree), len(tree)


@dataclass(frozen=True)
class Sample:
    time: float  # time.time(), the clock Dagster stamps its events with
    rss: int  # bytes, summed over the tree
    processes: int


@dataclass
class TreeSampler:
    """Samples the RSS of ``root``'s process tree every ``interval`` seconds in a thread.

    Use as a context manager, or ``start()`` / ``stop()``. ``samples`` holds every sample;
    ``peak(start, end)`` is the largest in a time window.
    """

    root: int
    interval: float = 0.2
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def sample(self) -> Sample:
        rss, processes = tree_rss_bytes(self.root)
        sample = Sample(time.time(), rss, processes)
        self.samples.append(sample)
        return sample

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> TreeSampler:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> TreeSampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def peak(self, start: float | None = None, end: float | None = None) -> int | None:
        """Largest tree RSS sampled in ``[start, end]``; see ``peak_in``."""
        return peak_in(self.samples, start, end)


def peak_in(samples: list[Sample], start: float | None, end: float | None) -> int | None:
    """Largest RSS of the samples taken in ``[start, end]`` (None = open end).

    A window shorter than the sampling interval may hold no sample: it then gets the larger of
    the last sample before it and the first after it. None when there are no samples at all.
    """
    low = float("-inf") if start is None else start
    high = float("inf") if end is None else end
    inside = [s.rss for s in samples if low <= s.time <= high]
    if inside:
        return max(inside)
    before = [s for s in samples if s.time < low]
    after = [s for s in samples if s.time > high]
    near = ([max(before, key=lambda s: s.time)] if before else []) + (
        [min(after, key=lambda s: s.time)] if after else []
    )
    return max(s.rss for s in near) if near else None


def self_max_rss_children() -> int:
    """Kernel's peak RSS (bytes) of the largest single waited-for descendant of this process."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def children_cpu_seconds() -> float:
    """User + system CPU seconds of every waited-for descendant of this process so far (a
    child's own waited-for children, dbt under the refresh, are included). Unlike wall time it
    hardly grows when other work shares the cores, so runs on a busy machine still compare."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
