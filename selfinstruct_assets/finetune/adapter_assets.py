"""LoRA adapters trained by `python -m training` (SFT, DPO, ORPO, GRPO), published under <home>/adapters/<name>.

Thin assets: rows from DuckDB become a JSONL dataset and a config file under <home>/datasets, and the
`training` resource (resources/training_launcher.py) runs `python -m training KIND --config FILE` through
Dagster Pipes, in a subprocess or on an ECS GPU node; the child's progress reaches the run log and its
metrics become the materialisation. An adapter folder only ever appears complete (atomic rename), and each
asset records its `adapter_path` in metadata: consumers read it from there (selfinstruct_assets.locations).
"""

import json
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from resources.project import BaseModelResource, ProjectHome
from resources.s3 import ArtifactsResource
from resources.training_launcher import TrainingLauncher
from selfinstruct.core.artifacts import adapter_dir, dataset_path
from selfinstruct.core.plots import line_chart_md
from selfinstruct.finetune.prompts import preference_row, sft_row
from selfinstruct_assets.constants import DUCKDB_POOL, FINETUNE
from selfinstruct_assets.finetune.train_config import config_class, to_settings
from selfinstruct_assets.locations import required_path
from training.job import TrainingJob, write_rows

MIN_PAIRS = 4  # below this DPO/ORPO are skipped (and the preference_pairs_minimum check fails)

# Fields, defaults and help text come from training.config, the defaults `python -m training` uses too.
SftConfig = config_class("sft", "SftConfig")
DpoConfig = config_class("dpo", "DpoConfig")
OrpoConfig = config_class("orpo", "OrpoConfig")
GrpoConfig = config_class(
    "grpo",
    "GrpoConfig",
    enabled=(
        bool,
        Field(
            default=False,
            description="GRPO samples several answers per prompt per step: slow on CPU, so off by default.",
        ),
    ),
)


def _train(
    context: dg.AssetExecutionContext,
    training: TrainingLauncher,
    artifacts: ArtifactsResource,
    kind: str,
    rows: list[dict],
    home: ProjectHome,
    base_model: BaseModelResource,
    config: dg.Config,
    start: Path | None = None,
    extra: dict | None = None,
) -> dg.MaterializeResult:
    """Write the rows and config, run the trainer through `training`, publish the adapter and its rows to the
    artifact store (the home folder itself by default, or S3), and return what the child reported."""
    root = home.root()
    rows_file = write_rows(dataset_path(root, f"{kind}_adapter"), rows)
    job = TrainingJob(
        kind, rows_file, base_model.dir(), adapter_dir(root, kind), asdict(to_settings(kind, config)), start
    )
    metadata = training.train(context, job)
    store = artifacts.store()
    # Consumers read adapter_path through selfinstruct_assets.locations, which fetches an s3:// version locally.
    trained = metadata["adapter_path"]
    metadata["adapter_path"] = store.put_dir(Path(str(getattr(trained, "value", trained))), adapter_dir("", kind))
    metadata["dataset_path"] = store.put_file(rows_file, dataset_path("", f"{kind}_adapter"))
    losses = metadata.pop("losses").value
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "rows": len(rows),
            **({"start_adapter": str(start)} if start else {}),
            **(extra or {}),
            "loss_curve": dg.MetadataValue.md(line_chart_md([tuple(p) for p in losses], f"{kind} loss")),
        }
    )


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE)
def sft_adapter(
    context: dg.AssetExecutionContext,
    config: SftConfig,
    home: ProjectHome,
    base_model: BaseModelResource,
    training: TrainingLauncher,
    artifacts: ArtifactsResource,
    sft_dataset: pl.DataFrame,
) -> dg.MaterializeResult:
    """LoRA supervised fine-tuning of the base model on `sft_dataset`."""
    rows = [sft_row(json.loads(r["prompt_json"]), r["answer"]) for r in sft_dataset.to_dicts()]
    return _train(context, training, artifacts, "sft", rows, home, base_model, config)


def _sft_adapter(context: dg.AssetExecutionContext) -> Path:
    """The SFT adapter DPO and GRPO continue from, where sft_adapter recorded it."""
    return required_path(context.instance, "sft_adapter", "adapter_path")


def _pairs(preference_pairs: pl.DataFrame) -> list[dict]:
    return [
        preference_row(json.loads(r["prompt_json"]), r["chosen"], r["rejected"]) for r in preference_pairs.to_dicts()
    ]


def _skip(kind: str, n: int) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={
            "skipped": f"{n} preference pairs < {MIN_PAIRS}: no {kind} adapter "
            "trained; add feedback or lower the pair margin",
            "rows": n,
        }
    )


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["sft_adapter"])
def dpo_adapter(
    context: dg.AssetExecutionContext,
    config: DpoConfig,
    home: ProjectHome,
    base_model: BaseModelResource,
    training: TrainingLauncher,
    artifacts: ArtifactsResource,
    preference_pairs: pl.DataFrame,
) -> dg.MaterializeResult:
    """DPO on the preference pairs, continuing from the SFT adapter (which is also the reference policy)."""
    rows = _pairs(preference_pairs)
    if len(rows) < MIN_PAIRS:
        return _skip("dpo", len(rows))
    return _train(context, training, artifacts, "dpo", rows, home, base_model, config, start=_sft_adapter(context))


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE)
def orpo_adapter(
    context: dg.AssetExecutionContext,
    config: OrpoConfig,
    home: ProjectHome,
    base_model: BaseModelResource,
    training: TrainingLauncher,
    artifacts: ArtifactsResource,
    preference_pairs: pl.DataFrame,
) -> dg.MaterializeResult:
    """ORPO on the preference pairs, from the base model (ORPO needs no SFT stage)."""
    rows = _pairs(preference_pairs)
    if len(rows) < MIN_PAIRS:
        return _skip("orpo", len(rows))
    return _train(context, training, artifacts, "orpo", rows, home, base_model, config)


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["sft_adapter"])
def grpo_adapter(
    context: dg.AssetExecutionContext,
    config: GrpoConfig,
    home: ProjectHome,
    base_model: BaseModelResource,
    training: TrainingLauncher,
    artifacts: ArtifactsResource,
    sft_dataset: pl.DataFrame,
) -> dg.MaterializeResult:
    """GRPO (trl's maintained RL trainer; PPO is gone from trl 1.16) from the SFT adapter, rewarded by CUAD match."""
    if not config.enabled:
        return dg.MaterializeResult(metadata={"skipped": "disabled (set enabled: true in this asset's config)"})
    rows = [{"prompt": json.loads(r["prompt_json"]), "answers": [r["answer"]]} for r in sft_dataset.to_dicts()]
    return _train(
        context,
        training,
        artifacts,
        "grpo",
        rows,
        home,
        base_model,
        config,
        start=_sft_adapter(context),
        extra={"reward": "CUAD match (word Jaccard >= 0.5 with the answer), as in the benchmark and the gate"},
    )
