"""Train one LoRA adapter without Dagster; prints the metrics JSON on stdout, progress on stderr.

    HF_HUB_OFFLINE=1 python -m training sft --config sft.json

The config file is JSON:
    {"base_model": "models/smollm2-135m-instruct", "dataset": "data/sft.jsonl", "out_dir": "adapters/sft",
     "start_adapter": null, "settings": {"max_steps": 100, "lora": {"r": 16}}}
`dataset` is a JSONL file of rows in the trainer's format (see training/_common.py ROW_KEYS). `start_adapter`
is read by dpo and grpo only. grpo is rewarded with the benchmark's CUAD match (`cuad_match_reward`, from
selfinstruct_core.metrics), since the LLM judge lives behind Dagster resources. Relative paths are taken from the config file's folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.config import SETTINGS, settings_from_dict

CONFIG_KEYS = {"base_model", "dataset", "out_dir", "start_adapter", "settings"}


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


def load_config(path: Path) -> dict:
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the config must be a JSON object")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(CONFIG_KEYS))}")
    missing = [k for k in ("base_model", "dataset", "out_dir") if not config.get(k)]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    root = Path(path).resolve().parent
    for key in ("base_model", "dataset", "out_dir", "start_adapter"):
        if config.get(key):
            config[key] = root / Path(config[key]).expanduser()
    return config


def run(kind: str, config: dict) -> dict:
    from training import trainers

    settings = settings_from_dict(kind, config.get("settings"))
    rows = read_jsonl(config["dataset"])
    args = (rows, config["base_model"], config["out_dir"], settings)
    start = config.get("start_adapter")
    if start and kind in ("sft", "orpo"):
        raise ValueError(f"start_adapter is not supported by {kind}; only dpo and grpo continue an adapter")

    def on_log(event: dict) -> None:
        print(json.dumps(event), file=sys.stderr, flush=True)

    if kind == "sft":
        return trainers.train_sft(*args, on_log=on_log)
    if kind == "orpo":
        return trainers.train_orpo(*args, on_log=on_log)
    if kind == "dpo":
        return trainers.train_dpo(*args, start_adapter=start, on_log=on_log)
    return trainers.train_grpo(*args, trainers.cuad_match_reward, start_adapter=start, on_log=on_log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=list(SETTINGS), help="which trainer to run")
    parser.add_argument("--config", required=True, type=Path, help="JSON file: base_model, dataset, out_dir, settings")
    opts = parser.parse_args(argv)
    try:
        config = load_config(opts.config)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from training._common import TrainingAborted  # imports transformers, so only once the config is sound

    try:
        metrics = run(opts.kind, config)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingAborted as exc:
        print(f"aborted: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
