"""Peak RSS of a whole process tree (a process and all its descendants), sampled in a thread; used by bench_demo.py.

    .venv/bin/python -m pytest -q tests/test_tree_memory.py

Training steps run in child processes (Dagster Pipes), so the demo's own ru_maxrss misses them: `TreeSampler`
polls the tree every `interval` seconds and records (time.time(), summed RSS bytes); `peak_per_window` gives the
peak inside each step's [start, end] window (unix seconds, as Dagster's step stats).

A 0.5 s sample misses short spikes, so the sampler also reads the root process's high-water mark (VmHWM), which the
kernel keeps exactly: `rise_per_window` says by how much each step raised it, i.e. which step set the root's peak.
"""

import threading
import time

from selfinstruct.core.memory import status_kib


def tree_rss(pid: int) -> int:
    """Summed RSS in bytes of `pid` and all its descendants; processes that vanish meanwhile are skipped."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def high_water(pid: int) -> int | None:
    """VmHWM of `pid` in bytes (its peak RSS so far, kept by the kernel), None where /proc does not say."""
    kib = status_kib("VmHWM", pid)
    return None if kib is None else kib * 1024


class TreeSampler:
    """`with TreeSampler(pid) as s: ...` samples `tree_rss(pid)` every `interval` s into `s.samples` until exit."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.root_high_water: list[tuple[float, int]] = []  # (time, the root's VmHWM)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            rss = tree_rss(self.pid)
            if rss:
                self.samples.append((time.time(), rss))
            if (hwm := high_water(self.pid)) is not None:
                self.root_high_water.append((time.time(), hwm))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int | None:
        return max((rss for _, rss in self.samples), default=None)


def peak_per_window(samples: list[tuple[float, int]], windows: dict[str, tuple[float, float]]) -> dict[str, int | None]:
    """Per window name: the largest sampled RSS with start <= t <= end, None if no sample fell inside."""
    return {
        name: max((rss for t, rss in samples if start <= t <= end), default=None)
        for name, (start, end) in windows.items()
    }


def rise_per_window(high_water: list[tuple[float, int]], windows: dict[str, tuple[float, float]]) -> dict[str, int]:
    """Per window: how far a monotonic high-water series rose from before the window to its end (0 if it did not).

    The value at a window's end is the last sample at or before the end; before its start, the last sample before.
    """

    def last(until: float, strict: bool) -> int:
        return max((v for t, v in high_water if (t < until if strict else t <= until)), default=0)

    return {name: max(0, last(end, False) - last(start, True)) for name, (start, end) in windows.items()}
