"""A bounded load on `selfinstruct serve` over loopback, sized to seconds: benchmarks/bench_serve.py on 48 requests.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_serve_load.py

8 concurrent clients, a promotion of adapter B halfway; every request is answered, each answered request is exactly
one query inbox line (none lost, none doubled), and the token appears nowhere in the inbox. No latency is asserted:
the figures are the benchmark's to report.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_serve import bench  # noqa: E402


@pytest.mark.slow
def test_load_with_a_promotion_loses_and_doubles_nothing(tmp_path):
    report = bench(tmp_path, requests=48, clients=8, n_contracts=2)
    assert report["errors"] == 0, report["error_samples"]
    assert report["answered"] == 48 and report["inbox_lines"] == 48 and report["inbox_exactly_once"]
    assert report["swaps"] == 1 and set(report["by_adapter"]) == {"aaaaaa000001", "bbbbbb000002"}
    assert sum(report["by_adapter"].values()) == 48 and not report["token_in_inbox"]
