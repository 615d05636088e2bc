"""Peak RSS of a whole process tree (a process and all its descendants), sampled in a thread; used by bench_demo.py.

    .venv/bin/python -m pytest -q tests/test_tree_memory.py

Training steps run in child processes (Dagster Pipes), so the demo's own ru_maxrss misses them: `TreeSampler`
polls the tree every `interval` seconds and records (time.time(), summed RSS bytes); `peak_per_window` gives the
peak inside each step's [start, end] window (unix seconds, as Dagster's step stats).
"""

import threading
import time


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


class TreeSampler:
    """`with TreeSampler(pid) as s: ...` samples `tree_rss(pid)` every `interval` s into `s.samples` until exit."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            rss = tree_rss(self.pid)
            if rss:
                self.samples.append((time.time(), rss))
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
    return {name: max((rss for t, rss in samples if start <= t <= end), default=None)
            for name, (start, end) in windows.items()}
