"""sft_adapter through the Pipes launcher: `python -m training` in a real child process on the tiny model.

A normal run (the child's metrics become the materialisation, its progress the run log), a child killed by
SIGKILL as the kernel's OOM killer would, and a child that raises on bad rows: the step fails with a message
that says which, and no adapter is published.
"""

import json
import os
import signal
import threading
import time

import dagster as dg
import polars as pl
import psutil
import pytest
from safetensors.torch import load_file

from resources.project import BaseModelResource, ProjectHome
from resources.s3 import ArtifactsResource
from resources.training_launcher import TrainingLauncher, describe_failure
from selfinstruct_assets.finetune.adapter_assets import sft_adapter

SETTINGS = {"max_steps": 3, "batch_size": 2, "grad_accum": 1, "max_length": 96, "lora_r": 4}
USER = [{"role": "user", "content": "Which law governs the Agreement?"}]


def dataset_asset(prompt: list[dict]) -> dg.AssetsDefinition:
    @dg.asset(name="sft_dataset")
    def sft_dataset() -> pl.DataFrame:
        return pl.DataFrame({"prompt_json": [json.dumps(prompt)] * 4, "answer": ["The laws of New York."] * 4})

    return sft_dataset


def materialize(home, tiny, prompt=USER, instance=None):
    return dg.materialize(
        [dataset_asset(prompt), sft_adapter],
        raise_on_error=False,
        instance=instance or dg.DagsterInstance.ephemeral(),
        resources={
            "home": ProjectHome(path=str(home)),
            "base_model": BaseModelResource(path=str(tiny)),
            "training": TrainingLauncher(),
            "artifacts": ArtifactsResource(location=str(home)),
        },
        run_config={"ops": {"sft_adapter": {"config": SETTINGS}}},
    )


def failure_text(result) -> str:
    [event] = [e for e in result.get_step_failure_events() if e.step_key == "sft_adapter"]
    data = event.step_failure_data
    return f"{data.user_failure_data.description if data.user_failure_data else ''} {data.error.message}"


def test_child_trains_and_reports_through_pipes(home, tiny):
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(home, tiny, instance=instance)
    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["sft_adapter"]]
    md = {k: v.value for k, v in event.materialization.metadata.items()}
    out = home / "adapters" / "sft"
    assert md["adapter_path"] == str(out) and md["steps"] == 3 and md["rows"] == 4
    assert md["trainable_params"] > 0 and md["final_loss"] > 0 and md["peak_rss_mb"] > 50
    assert md["loss_curve"].startswith("![chart](data:image/png;base64,")
    weights = load_file(out / "adapter_model.safetensors")
    assert any(float(t.abs().sum()) > 0 for name, t in weights.items() if "lora_B" in name)  # B starts at zero
    config = json.loads((home / "datasets" / "sft_adapter.config.json").read_text())
    assert config["out_dir"] == str(out) and config["settings"]["lora"]["r"] == 4
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("sft step 3: loss" in m for m in logs)  # the child's progress, forwarded by Pipes
    assert any("successfully opened dagster pipes" in m for m in logs)
    assert any(m.startswith("before sft training this process released memory: RSS ") for m in logs)


def oom_killer(threshold_mb: float, killed: dict) -> threading.Thread:
    """SIGKILL the `-m training` child once it holds `threshold_mb` of memory, as the kernel's OOM killer would."""
    me = psutil.Process()

    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            for child in me.children(recursive=True):
                try:
                    if "training" in child.cmdline() and child.memory_info().rss > threshold_mb * 2**20:
                        os.kill(child.pid, signal.SIGKILL)
                        killed["pid"] = child.pid
                except psutil.Error:
                    continue
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_killed_child_fails_the_step_and_publishes_nothing(home, tiny):
    killed: dict = {}
    oom_killer(350, killed)  # a normal run of this child peaks near 540 MB; torch alone is loaded below 350
    result = materialize(home, tiny)
    assert killed and not result.success
    text = failure_text(result)
    assert "sft training was killed by SIGKILL, exit code -9" in text and "out-of-memory" in text
    assert "Nothing was published" in text and "does not exist" in text
    assert not (home / "adapters" / "sft").exists()
    assert not result.get_asset_materialization_events()[1:]  # only the upstream dataset materialised


def test_child_that_raises_fails_the_step_with_its_error(home, tiny):
    result = materialize(home, tiny, prompt=[{"role": "assistant", "content": "not a question"}])
    assert not result.success
    text = failure_text(result)
    assert (
        "sft training failed in the child process: ValueError: row 0: the last message of 'prompt' "
        "must have role 'user'" in text
    )
    assert "Nothing was published" in text
    assert not (home / "adapters" / "sft").exists()


@pytest.mark.parametrize(
    "error, expected",
    [
        (RuntimeError("External execution process failed with code -15"), "killed by SIGTERM, exit code -15."),
        (RuntimeError("failed with code 137"), "killed by SIGKILL, exit code 137 (the kernel's out-of-memory"),
        (RuntimeError("failed with code 1"), "exited with code 1; its output is in the step's logs."),
        (RuntimeError("ECS task failed to start: no GPU"), "failed: ECS task failed to start: no GPU."),
    ],
)
def test_failure_messages(tmp_path, error, expected):
    text = describe_failure("dpo", tmp_path / "dpo", error, None)
    assert expected in text and text.endswith(f"Nothing was published: {tmp_path / 'dpo'} does not exist.")
    (tmp_path / "dpo").mkdir()
    assert describe_failure("dpo", tmp_path / "dpo", error, None).endswith("keeps the previous adapter.")


def test_child_modules_import_no_dagster():
    """The launched command's modules stay Dagster-free; dagster_pipes is loaded only when Pipes launches it."""
    import subprocess
    import sys

    code = (
        "import sys, training.__main__, training.job, training.s3_files\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0].startswith('dagster')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_child_reports_its_own_peak_memory_not_the_launchers():
    """A child started by subprocess (vfork + exec) inherits the launcher's ru_maxrss; peak_rss_mb must not."""
    import subprocess
    import sys

    import numpy as np

    held = np.ones(700 * 2**20 // 8)  # 700 MiB resident in this (launching) process
    try:
        launcher = psutil.Process().memory_info().rss / 2**20
        out = subprocess.run(
            [sys.executable, "-c", "from training.__main__ import peak_rss_mb; print(peak_rss_mb())"],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        del held
    child = float(out.stdout.strip())
    assert 5 < child < launcher - 500, (child, launcher)
