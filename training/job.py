"""One training run as files: the rows (JSONL) and the config `python -m training KIND --config FILE` reads.

    job = TrainingJob("sft", dataset=Path("datasets/sft_adapter.jsonl"), base_model=model, out_dir=out,
                      settings=asdict(SFTSettings()))
    write_rows(job.dataset, rows); config = job.write_config()
    subprocess.run(job.command(str(config)))

Whoever launches the run (a subprocess here, an ECS task elsewhere) runs the same command; only where the files
live changes (`config(**uris)` swaps paths for s3:// URIs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from selfinstruct.core.artifacts import publish_bytes


@dataclass(frozen=True)
class TrainingJob:
    kind: str  # sft, dpo, orpo or grpo
    dataset: Path  # JSONL rows in the trainer's format (training/_common.py ROW_KEYS)
    base_model: Path  # local model folder the adapter is trained on
    out_dir: Path  # where the adapter is published
    settings: dict  # the trainer's settings as plain JSON values (dataclasses.asdict of its TrainSettings)
    start_adapter: Path | None = None  # the adapter DPO and GRPO continue

    @property
    def config_path(self) -> Path:
        return self.dataset.with_name(f"{self.dataset.stem}.config.json")

    def config(self, **replace: str | None) -> dict:
        """The config file's content; `replace` swaps a path (e.g. dataset="s3://...") for another location."""
        values: dict[str, Path | str | None] = {
            "base_model": self.base_model,
            "dataset": self.dataset,
            "out_dir": self.out_dir,
            "start_adapter": self.start_adapter,
        }
        values.update(replace)
        return {**{k: (str(v) if v is not None else None) for k, v in values.items()}, "settings": self.settings}

    def write_config(self) -> Path:
        return publish_bytes(self.config_path, json.dumps(self.config(), indent=2).encode())

    def command(self, config_ref: str, python: str = "python") -> list[str]:
        return [python, "-m", "training", self.kind, "--config", config_ref]


def write_rows(path: Path, rows: list[dict]) -> Path:
    """The rows as JSON Lines, published whole."""
    return publish_bytes(path, "".join(json.dumps(row) + "\n" for row in rows).encode())
