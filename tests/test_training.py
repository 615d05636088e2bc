"""LoRA trainers on the tiny random Llama (fast) and on SmolLM2 (slow): adapters change, the base does not.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_training.py          # add -m "not slow" to skip SmolLM2
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from selfinstruct.core.artifacts import publish_dir as publish  # noqa: E402
from selfinstruct.core.base_model import make_tiny_model, prepare_base_model  # noqa: E402
from training import trainers  # noqa: E402
from training.__main__ import main as cli_main  # noqa: E402
from training._common import cuad_match_reward  # noqa: E402
from training.config import DPOSettings, GRPOSettings, ORPOSettings, SFTSettings  # noqa: E402
from training.trainers import TrainingAborted, load_adapted, train_dpo, train_grpo, train_orpo, train_sft  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ADAPTER_FILES = ["adapter_config.json", "adapter_model.safetensors", "training_metrics.json"]
PROBE = "The Licensee shall pay all royalties within thirty days."
FAST = dict(max_steps=2, max_length=64, batch_size=4)


def user(text):
    return [{"role": "user", "content": text}]


def assistant(text):
    return [{"role": "assistant", "content": text}]


SFT_ROWS = [
    {
        "prompt": user(f"Clause {i}: who may terminate the Agreement?"),
        "completion": assistant("Either party, upon thirty days written notice."),
    }
    for i in range(8)
]
PREF_ROWS = [
    {
        "prompt": user(f"Clause {i}: which law governs?"),
        "chosen": assistant("The laws of New York."),
        "rejected": assistant("Any dispute shall be resolved by arbitration."),
    }
    for i in range(8)
]
GRPO_ROWS = [
    {"prompt": user(f"Clause {i}: which law governs?"), "answers": ["the laws of the State of New York"]}
    for i in range(8)
]


def folder_hashes(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)
    return base, folder_hashes(base)


@pytest.fixture(scope="module")
def sft_adapter(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapters") / "sft"
    metrics = train_sft(SFT_ROWS, tiny[0], out, SFTSettings(**FAST))
    return out, metrics


def probe_logits(model, tok) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**tok(PROBE, return_tensors="pt")).logits.float()


@pytest.fixture
def capture_saved(tiny, monkeypatch):
    """Logits of the in-memory trained model at the moment its adapter is saved."""
    from transformers import AutoTokenizer

    seen = {"tok": AutoTokenizer.from_pretrained(tiny[0])}
    original = trainers.save_adapter

    def save(model, folder, metrics, extra):
        seen["logits"] = probe_logits(model, seen["tok"])
        return original(model, folder, metrics, extra)

    monkeypatch.setattr(trainers, "save_adapter", save)
    return seen


# ------------------------------------------------------------------------------------------------ settings


# The reward is the benchmark's CUAD match (selfinstruct.core.metrics): 1 at word Jaccard >= 0.5, else 0.
@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        ("The laws of New York.", ["the laws of New York"], 1.0),
        (
            "New York law",
            ["the laws of the State of New York"],
            0.0,
        ),  # {new, york} of {new, york, law, laws, of, state}
        ("Delaware", ["New York"], 0.0),
        ("laws of Delaware", ["New York", "laws of Delaware state"], 1.0),  # best of several gold answers: 3/4
        ("laws of Delaware", ["laws of New York"], 0.0),  # 2/5
        ("", [""], 0.0),  # two empty answers agree on nothing, as in the benchmark
    ],
)
def test_cuad_match_reward(completion, gold, expected):
    assert cuad_match_reward([completion], [gold]) == [pytest.approx(expected)]


# ------------------------------------------------------------------------------------------------ training


def assert_adapter(out: Path, base: Path, hashes: dict, kind: str) -> dict:
    assert sorted(p.name for p in out.iterdir()) == ADAPTER_FILES
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # no temp or old folders
    assert folder_hashes(base) == hashes, "training wrote into the base model folder"
    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all("lora_" in k and ".ref." not in k for k in weights)
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert metrics["trainer"] == kind and metrics["steps"] == 2 and metrics["adapter_path"] == str(out)
    assert [step for step, _ in metrics["losses"]] == [1, 2] and metrics["losses"][-1][1] == metrics["final_loss"]
    assert 0 < metrics["trainable_params"] < metrics["total_params"] and metrics["tokens_per_s"] > 0
    return weights


def assert_reload_matches(base: Path, out: Path, seen: dict) -> None:
    tok, model = load_adapted(base, out)
    tok2, model2 = load_adapted(base, out)
    reloaded = probe_logits(model, tok)
    assert torch.allclose(reloaded, seen["logits"], atol=1e-5), "reloaded adapter differs from the trained model"
    assert torch.equal(reloaded, probe_logits(model2, tok2))
    with model.disable_adapter():
        assert not torch.allclose(probe_logits(model, tok), reloaded, atol=1e-6), "adapter has no effect"


def test_sft_trains_the_adapter_only(tiny, tmp_path, capture_saved):
    base, hashes = tiny
    events = []
    out = tmp_path / "sft"
    metrics = train_sft(SFT_ROWS, base, out, SFTSettings(**FAST), on_log=events.append)
    weights = assert_adapter(out, base, hashes, "sft")
    assert any(k.endswith("lora_B.weight") and v.abs().max() > 0 for k, v in weights.items())  # B starts at zero
    assert all(v.abs().max() > 0 for k, v in weights.items() if k.endswith("lora_B.weight"))
    assert [e["step"] for e in events] == [1, 2] and all(e["tokens_per_s"] > 0 for e in events)
    assert metrics["losses"] == [(e["step"], e["loss"]) for e in events]
    assert_reload_matches(base, out, capture_saved)


@pytest.mark.parametrize("kind", ["dpo_from_sft", "orpo", "grpo"])
def test_preference_and_rl_trainers_change_the_adapter(kind, tiny, sft_adapter, tmp_path, capture_saved):
    base, hashes = tiny
    out = tmp_path / kind
    if kind == "dpo_from_sft":
        train_dpo(PREF_ROWS, base, out, DPOSettings(**FAST), start_adapter=sft_adapter[0])
    elif kind == "orpo":
        train_orpo(PREF_ROWS, base, out, ORPOSettings(**FAST))
    else:
        calls = []

        def reward(completions, answers):
            calls.append((completions, answers))
            return [len(text) / 10 for text in completions]  # varies across a group, so advantages are non-zero

        train_grpo(GRPO_ROWS, base, out, GRPOSettings(**FAST, max_completion_length=8, learning_rate=1e-3), reward)
        assert calls and all(isinstance(c, str) for c in calls[0][0])
        assert calls[0][1] == [GRPO_ROWS[0]["answers"]] * len(calls[0][0])
    weights = assert_adapter(out, base, hashes, kind.split("_")[0])
    if kind == "dpo_from_sft":
        start = load_file(sft_adapter[0] / "adapter_model.safetensors")
        assert weights.keys() == start.keys()  # trl's frozen "ref" copy is not saved
        assert any(not torch.equal(weights[k], start[k]) for k in start), "DPO did not move the SFT adapter"
    else:
        assert all(v.abs().max() > 0 for k, v in weights.items() if k.endswith("lora_B.weight"))
    assert_reload_matches(base, out, capture_saved)


# ------------------------------------------------------------------------------------------------ bad input


def test_empty_dataset_is_rejected(tiny, tmp_path):
    with pytest.raises(ValueError, match="no rows to train on"):
        train_sft([], tiny[0], tmp_path / "out", SFTSettings(**FAST))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("train, settings", [(train_dpo, DPOSettings), (train_orpo, ORPOSettings)])
def test_preference_rows_must_differ_and_be_complete(train, settings, tiny, tmp_path):
    same = [{**row, "rejected": row["chosen"]} for row in PREF_ROWS]
    with pytest.raises(ValueError, match=r"row 0: 'rejected' equals 'chosen' in every row"):
        train(same, tiny[0], tmp_path / "out", settings(**FAST))
    broken = PREF_ROWS[:3] + [{"prompt": user("q"), "chosen": assistant("a")}]
    with pytest.raises(ValueError, match=r"row 3: missing key 'rejected'"):
        train(broken, tiny[0], tmp_path / "out", settings(**FAST))
    assert not (tmp_path / "out").exists()


def test_nan_loss_aborts_and_publishes_nothing(tiny, tmp_path, monkeypatch):
    from trl import SFTTrainer

    real = SFTTrainer.compute_loss

    def nan_loss(self, *args, **kwargs):
        return real(self, *args, **kwargs) * float("nan")

    monkeypatch.setattr(SFTTrainer, "compute_loss", nan_loss)
    out = tmp_path / "adapters" / "sft"
    out.parent.mkdir()
    with pytest.raises(TrainingAborted, match=r"sft training diverged: loss is nan at step 1.*lower the learning rate"):
        train_sft(SFT_ROWS, tiny[0], out, SFTSettings(**FAST))
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_interrupted_run_keeps_the_old_adapter(tiny, sft_adapter, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where trl's throwaway output_dir goes
    out = tmp_path / "adapters" / "sft"
    shutil.copytree(sft_adapter[0], out)
    before = folder_hashes(out)

    def interrupt(event):
        if event["step"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_sft(SFT_ROWS, tiny[0], out, SFTSettings(**FAST, seed=1), on_log=interrupt)
    assert folder_hashes(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["sft"] and list(scratch.iterdir()) == []


def test_publish_swaps_folders_and_a_failed_build_changes_nothing(tmp_path):
    final = tmp_path / "a"
    publish(lambda tmp: (tmp / "v").write_text("1"), final)
    publish(lambda tmp: (tmp / "v").write_text("2"), final)
    assert (final / "v").read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["a"]

    def fail(tmp):
        (tmp / "v").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish(fail, final)
    assert (final / "v").read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["a"]


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_trains_sft_from_a_config_file(tiny, tmp_path):
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in SFT_ROWS))
    config = tmp_path / "sft.json"
    config.write_text(
        json.dumps(
            {
                "base_model": str(tiny[0]),
                "dataset": "sft.jsonl",
                "out_dir": "adapters/sft",
                "settings": {**FAST, "lora": {"r": 4}},
            }
        )
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "training", "sft", "--config", str(config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout)
    out = tmp_path / "adapters" / "sft"
    assert metrics["adapter_path"] == str(out) and metrics["steps"] == 2
    assert sorted(p.name for p in out.iterdir()) == ADAPTER_FILES
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4
    assert '"step": 1' in proc.stderr and '"step": 2' in proc.stderr


def test_cli_reports_a_bad_config(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"base_model": "m", "dataset": "d.jsonl", "out_dir": "o", "settings": {"lr": 1}}))
    assert cli_main(["sft", "--config", str(config)]) == 2
    assert "unknown sft setting(s) lr" in capsys.readouterr().err
    config.write_text(json.dumps({"base_model": "m", "dataset": "d.jsonl"}))
    assert cli_main(["dpo", "--config", str(config)]) == 2
    assert "missing out_dir" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ SmolLM2


@pytest.mark.slow
def test_smollm_sft_then_dpo(tmp_path_factory):
    base = prepare_base_model(tmp_path_factory.mktemp("models"))
    hashes = folder_hashes(base)
    out = tmp_path_factory.mktemp("smol-adapters")
    small = dict(max_steps=2, max_length=256, batch_size=2)
    sft = train_sft(SFT_ROWS[:4], base, out / "sft", SFTSettings(**small))
    dpo = train_dpo(PREF_ROWS[:4], base, out / "dpo", DPOSettings(**small), start_adapter=out / "sft")
    assert sft["steps"] == dpo["steps"] == 2 and all(m["final_loss"] == m["final_loss"] for m in (sft, dpo))
    assert folder_hashes(base) == hashes
    start, trained = (load_file(out / n / "adapter_model.safetensors") for n in ("sft", "dpo"))
    assert start.keys() == trained.keys() and any(not torch.equal(start[k], trained[k]) for k in start)
    tok, model = load_adapted(base, out / "dpo")
    enc = tok.apply_chat_template(
        user("Who may terminate?"), add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    generated = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert generated.shape[1] > enc["input_ids"].shape[1]
