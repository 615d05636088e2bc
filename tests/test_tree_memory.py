"""benchmarks/tree_memory.py: a grandchild's memory counts in the tree's peak; per-step windows.

    .venv/bin/python -m pytest -q tests/test_tree_memory.py
"""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from tree_memory import TreeSampler, peak_per_window, tree_rss  # noqa: E402

MB = 1024**2
# The child starts a grandchild that holds 200 MB (touched, so resident) for 2 s, then waits for it.
GRANDCHILD = "import time; b = bytearray(200 * 1024 * 1024); time.sleep(2)"
CHILD = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {GRANDCHILD!r}], check=True)"


def test_tree_peak_includes_grandchild():
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", CHILD])
    parent_peak = 0
    with TreeSampler(proc.pid, interval=0.1) as sampler:
        while proc.poll() is None:
            try:
                parent_peak = max(parent_peak, psutil.Process(proc.pid).memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
    assert proc.wait(timeout=10) == 0
    assert sampler.samples, "no sample taken"
    assert sampler.peak - parent_peak >= 150 * MB, (sampler.peak / MB, parent_peak / MB)


def test_tree_rss_of_gone_process_is_zero():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert tree_rss(proc.pid) == 0


def test_peak_per_window():
    samples = [(10.0, 100), (10.5, 300), (11.0, 200), (12.0, 50), (20.0, 999)]
    windows = {"a": (10.0, 11.0), "b": (11.5, 12.0), "empty": (13.0, 19.0), "edge": (20.0, 20.0)}
    assert peak_per_window(samples, windows) == {"a": 300, "b": 50, "empty": None, "edge": 999}
