"""Train one LoRA adapter, the retriever or the answer judge without Dagster; prints the metrics JSON on stdout,
progress on stderr.

    HF_HUB_OFFLINE=1 python -m training sft --config sft.json
    python -m training dpo --config s3://bucket/runs/abc/dpo.json      # a GPU node: data and adapter on S3
    HF_HUB_OFFLINE=1 python -m training retriever --config retriever.json

The config file is JSON:
    {"base_model": "models/smollm2-135m-instruct", "dataset": "data/sft.jsonl", "out_dir": "adapters/sft",
     "start_adapter": null, "settings": {"max_steps": 100, "lora": {"r": 16}}}
`dataset` is a JSONL file of rows in the trainer's format (see training/_common.py ROW_KEYS). `start_adapter`
is read by dpo and grpo only. The two MiniLM trainers, `retriever` (rows {question, positive[, negative]},
as selfinstruct.retrieval.pairs.build_pairs makes them; training/retriever.py) and `judge` (rows
{question, golds, candidate, label}, as selfinstruct.judging.judge_candidates.build_judge_examples makes them;
training/judge.py), take the same keys without `start_adapter`; their `base_model` defaults to the packaged
all-MiniLM-L6-v2 and their metrics name the published folder `model_dir`. grpo is rewarded with the benchmark's
CUAD match (`cuad_match_reward`, from selfinstruct.core.metrics), since the LLM judge lives behind Dagster
resources. Relative paths are taken from the config file's folder (its S3 folder for an s3:// config; see
training/s3_files.py).

Launched by Dagster Pipes (DAGSTER_PIPES_CONTEXT set, as the adapter assets' TrainingLauncher does), the same
command also sends each progress line to the run log and reports the adapter's metrics as the asset's
materialisation; an error reaches the step as the child's exception. `dagster_pipes` is a small package of its
own: nothing here imports Dagster.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from contextlib import nullcontext, redirect_stdout
from pathlib import Path
from typing import Any

from selfinstruct.core.memory import status_kib
from selfinstruct.core.s3_uri import is_s3_uri
from training import s3_files
from training.config import SETTINGS, build_settings, settings_from_dict

CONFIG_KEYS = {"base_model", "dataset", "out_dir", "start_adapter", "settings"}
MODEL_KINDS = ("retriever", "judge")  # sentence-transformers models: no LoRA, base_model optional
KINDS = (*SETTINGS, *MODEL_KINDS)
PIPES_ENV = "DAGSTER_PIPES_CONTEXT"  # set by every Dagster Pipes client that launches this command


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return rows


def check_config(config, where: str, kind: str = "sft") -> dict:
    if not isinstance(config, dict):
        raise ValueError(f"{where}: the config must be a JSON object")
    allowed = CONFIG_KEYS - {"start_adapter"} if kind in MODEL_KINDS else CONFIG_KEYS
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    required = ("dataset", "out_dir") if kind in MODEL_KINDS else ("base_model", "dataset", "out_dir")
    missing = [k for k in required if not config.get(k)]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    return config


def load_config(path: Path, kind: str = "sft") -> dict:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:  # the file is named: the decoder's own message names only a position
        raise ValueError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); the config is one JSON "
            'object, e.g. {"base_model": ..., "dataset": "rows.jsonl", "out_dir": "adapter", "settings": {}}'
        ) from None
    config = check_config(raw, str(path), kind)
    root = Path(path).resolve().parent
    for key in ("base_model", "dataset", "out_dir", "start_adapter"):
        if config.get(key):
            config[key] = root / Path(config[key]).expanduser()
    return config


def run_model(kind: str, config: dict) -> dict:
    """Train the retriever or the judge (a sentence-transformers folder) from `config`; its metrics."""
    from training import judge, retriever

    settings_cls = retriever.RetrieverTrainSettings if kind == "retriever" else judge.JudgeTrainSettings
    settings = build_settings(settings_cls, config.get("settings") or {}, kind)
    where = str(config["dataset"])
    # The transformers Trainer prints each step's log dict: progress goes to stderr, stdout holds the metrics only.
    with redirect_stdout(sys.stderr):
        if kind == "retriever":
            pairs = retriever.check_pairs(read_jsonl(config["dataset"]), where)
            return retriever.train_retriever(pairs, config["out_dir"], settings, config.get("base_model"))
        examples = judge.check_examples(read_jsonl(config["dataset"]), where)
        return judge.train_judge(examples, config["out_dir"], settings, config.get("base_model"))


def run(kind: str, config: dict, on_log=None) -> dict:
    if kind in MODEL_KINDS:
        return run_model(kind, config)
    from training import trainers

    settings = settings_from_dict(kind, config.get("settings"))
    rows = read_jsonl(config["dataset"])
    # settings_from_dict gives `kind`'s own settings class (SFTSettings, ...), which each trainer takes
    args: tuple[list[dict], Path, Path, Any] = (rows, config["base_model"], config["out_dir"], settings)
    start = config.get("start_adapter")
    if start and kind in ("sft", "orpo"):
        raise ValueError(f"start_adapter is not supported by {kind}; only dpo and grpo continue an adapter")
    if kind == "sft":
        return trainers.train_sft(*args, on_log=on_log)
    if kind == "orpo":
        return trainers.train_orpo(*args, on_log=on_log)
    if kind == "dpo":
        return trainers.train_dpo(*args, start_adapter=start, on_log=on_log)
    return trainers.train_grpo(*args, trainers.cuad_match_reward, start_adapter=start, on_log=on_log)


def train_from(kind: str, config_ref: str, scratch: Path, on_log) -> dict:
    """Train from a config file or s3:// config; the metrics' adapter_path (model_dir for the retriever and the
    judge) is where the trained folder now is."""
    if not is_s3_uri(config_ref):
        return run(kind, load_config(Path(config_ref), kind), on_log)
    s3 = s3_files.client()
    config = check_config(s3_files.read_json(s3, config_ref), config_ref, kind)
    config, out_uri = s3_files.stage_config(s3, config, config_ref, scratch)
    metrics = run(kind, config, on_log)
    if out_uri:
        path_key = "model_dir" if kind in MODEL_KINDS else "adapter_path"
        s3_files.upload_dir(s3, Path(metrics[path_key]), out_uri)
        metrics[path_key] = out_uri
    return metrics


def peak_rss_mb() -> float:
    """This process's own peak RSS in MiB: VmHWM of its address space where /proc has it.

    Not ru_maxrss: a child started by vfork + exec (Python's subprocess, so the Pipes launcher) inherits the
    launching process's high-water mark in it, and reported the demo process's 5.2 GiB as a trainer's peak.
    """
    kib = status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux reports KiB
    return round(kib / 1024, 1)


def pipes_metadata(metrics: dict) -> dict:
    """What the launching asset records; `losses` becomes its loss-curve chart."""
    if "model_dir" in metrics:  # the retriever or the judge: a loss per step, no LoRA counts
        return {
            **{k: metrics[k] for k in ("model_dir", "steps", "final_loss")},
            "seconds": round(metrics["seconds"], 1),
            "peak_rss_mb": peak_rss_mb(),
            "losses": [[step, loss] for step, loss in enumerate(metrics["loss_curve"], 1)],
        }
    keys = ("adapter_path", "steps", "final_loss", "trainable_params", "precision")
    return {
        **{k: metrics[k] for k in keys},
        "tokens_per_s": round(metrics["tokens_per_s"] or 0, 1),
        "seconds": round(metrics["seconds"], 1),
        "peak_rss_mb": peak_rss_mb(),
        "losses": [[step, loss] for step, loss in metrics["losses"]],
    }


def _progress(kind: str, pipes):
    def on_log(event: dict) -> None:
        print(json.dumps(event), file=sys.stderr, flush=True)
        if pipes is not None:
            pipes.log.info(
                f"{kind} step {event.get('step')}: loss {event.get('loss'):.4f}, "
                f"{event.get('tokens_per_s') or 0:.0f} tokens/s"
            )

    return on_log


def _open_pipes():
    if not os.environ.get(PIPES_ENV):
        return None
    from dagster_pipes import open_dagster_pipes

    return open_dagster_pipes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=list(KINDS), help="which trainer to run")
    parser.add_argument(
        "--config", required=True, help="JSON file or s3:// URI: base_model, dataset, out_dir, start_adapter, settings"
    )
    opts = parser.parse_args(argv)
    pipes = _open_pipes()
    try:
        # Under Pipes an exception leaves the `with` first, so the step sees the child's own error.
        with pipes if pipes is not None else nullcontext(), tempfile.TemporaryDirectory(prefix="training-") as scratch:
            metrics = train_from(opts.kind, opts.config, Path(scratch), _progress(opts.kind, pipes))
            if pipes is not None:
                pipes.report_asset_materialization(metadata=pipes_metadata(metrics))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        from training._common import TrainingAborted  # imports transformers: only once it is needed

        if not isinstance(exc, TrainingAborted):
            raise
        print(f"aborted: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
