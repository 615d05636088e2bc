"""benchmarks/tree_memory.py: a grandchild's memory counts in the tree's peak; per-step windows.

.venv/bin/python -m pytest -q tests/test_tree_memory.py
"""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from tree_memory import TreeSampler, high_water, peak_per_window, rise_per_window, tree_rss  # noqa: E402

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


def test_high_water_catches_a_spike_between_samples():
    """A 300 MB spike freed within 0.2 s is invisible to 2 s samples but stays in the root's VmHWM."""
    code = "import time; time.sleep(0.5); b = b'x' * (300 * 1024 * 1024); del b; time.sleep(2.5)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    with TreeSampler(proc.pid, interval=2.0) as sampler:
        proc.wait(timeout=20)
    assert sampler.peak < 200 * MB  # the samples missed it
    assert max(v for _, v in sampler.root_high_water) >= 290 * MB
    assert high_water(proc.pid) is None  # gone


def test_rise_per_window():
    hwm = [(10.0, 100), (11.0, 100), (12.0, 400), (13.0, 400), (14.0, 450)]
    windows = {
        "flat": (10.5, 11.5),
        "spike": (11.5, 12.5),
        "after": (12.5, 13.5),
        "last": (13.5, 14.0),
        "before_any": (0.0, 5.0),
    }
    assert rise_per_window(hwm, windows) == {"flat": 0, "spike": 300, "after": 0, "last": 50, "before_any": 0}
