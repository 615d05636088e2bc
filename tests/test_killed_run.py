"""A training run killed with SIGKILL publishes nothing, and the served adapter stays whole and servable."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from procs import REPO
from safetensors.numpy import save_file

from selfinstruct.serving.registry import current, promote, snapshot_adapter


def served_snapshot(home):
    src = home / "adapters" / "dpo"
    src.mkdir(parents=True)
    (src / "adapter_config.json").write_text("{}")
    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(src / "adapter_model.safetensors"))
    snap = snapshot_adapter(src, home / "serving", "a1b2c3d4e5f6")
    return promote(
        home / "serving",
        {
            "method": "dpo",
            "adapter_id": "a1b2c3d4e5f6",
            "path": str(snap),
            "scores": {"cuad_match": 0.4},
            "benchmark_run_id": "r1",
        },
        reason="first",
    )


@pytest.mark.slow
def test_sigkill_during_training_leaves_no_adapter_and_the_served_one_intact(tiny, tmp_path):
    home = tmp_path / "home"
    entry = served_snapshot(home)
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Clause {i}: who may terminate?"}],
            "completion": [{"role": "assistant", "content": "Either party."}],
        }
        for i in range(64)
    ]
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = home / "adapters" / "sft"
    (tmp_path / "sft.json").write_text(
        json.dumps(
            {
                "base_model": str(tiny),
                "dataset": "sft.jsonl",
                "out_dir": str(out),
                "settings": {"max_steps": 5000, "batch_size": 2, "max_length": 64},
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "training", "sft", "--config", str(tmp_path / "sft.json")],
        cwd=REPO,
        env=dict(os.environ),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # progress lines are JSON with a step; wait for training to be under way
        line = proc.stderr.readline()
        if line.startswith("{") and '"step"' in line:
            break
        assert proc.poll() is None, "training ended before it could be killed"
    else:
        raise AssertionError("no training progress within 120 s")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and [p.name for p in out.parent.iterdir()] == ["dpo"]
    served = current(home / "serving")
    assert served == entry and (home / "serving" / "adapters" / "a1b2c3d4e5f6" / "adapter_model.safetensors").is_file()
