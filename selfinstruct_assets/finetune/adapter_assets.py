"""LoRA adapters trained by `training/` (SFT, DPO, ORPO, GRPO), published under <home>/adapters/<name>.

Thin assets: rows from DuckDB become conversational datasets, `training.trainers` does the work, and the
run log shows progress. An adapter folder only ever appears complete (atomic rename), and each asset records
its `adapter_path` in metadata: consumers read it from there (selfinstruct_assets.locations).
"""

import json
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from resources.project import BaseModelResource, ProjectHome
from selfinstruct_core.artifacts import adapter_dir

from ..constants import DUCKDB_POOL, FINETUNE
from ..locations import required_path
from .plots import line_chart_md
from .prompts import preference_row, sft_row
from .train_config import config_class, to_settings

MIN_PAIRS = 4  # below this DPO/ORPO are skipped (and the preference_pairs_minimum check fails)

# Fields, defaults and help text come from training.config, the defaults `python -m training` uses too.
SftConfig = config_class("sft", "SftConfig")
DpoConfig = config_class("dpo", "DpoConfig")
OrpoConfig = config_class("orpo", "OrpoConfig")
GrpoConfig = config_class("grpo", "GrpoConfig", enabled=(bool, Field(
    default=False, description="GRPO samples several answers per prompt per step: slow on CPU, so off by default.")))


def _logger(context: dg.AssetExecutionContext, kind: str):
    def on_log(event: dict) -> None:
        context.log.info(f"{kind} step {event.get('step')}: loss {event.get('loss')}, "
                         f"{event.get('tokens_per_s') or 0:.0f} tokens/s")
    return on_log


def _result(kind: str, metrics: dict, rows: int, extra: dict | None = None) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={
        "adapter_path": metrics["adapter_path"], "rows": rows, "steps": metrics["steps"],
        "final_loss": metrics["final_loss"], "trainable_params": metrics["trainable_params"],
        "tokens_per_s": round(metrics["tokens_per_s"] or 0, 1), "seconds": round(metrics["seconds"], 1),
        "loss_curve": dg.MetadataValue.md(line_chart_md(metrics["losses"], f"{kind} loss")), **(extra or {})})


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE)
def sft_adapter(context: dg.AssetExecutionContext, config: SftConfig, home: ProjectHome,
                base_model: BaseModelResource, sft_dataset: pl.DataFrame) -> dg.MaterializeResult:
    """LoRA supervised fine-tuning of the base model on `sft_dataset`."""
    from training.trainers import train_sft

    rows = [sft_row(json.loads(r["prompt_json"]), r["answer"]) for r in sft_dataset.to_dicts()]
    metrics = train_sft(rows, base_model.dir(), adapter_dir(home.root(), "sft"), to_settings("sft", config),
                        on_log=_logger(context, "sft"))
    return _result("sft", metrics, len(rows))


def _sft_adapter(context: dg.AssetExecutionContext) -> Path:
    """The SFT adapter DPO and GRPO continue from, where sft_adapter recorded it."""
    return required_path(context.instance, "sft_adapter", "adapter_path")


def _pairs(preference_pairs: pl.DataFrame) -> list[dict]:
    return [preference_row(json.loads(r["prompt_json"]), r["chosen"], r["rejected"])
            for r in preference_pairs.to_dicts()]


def _skip(kind: str, n: int) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"skipped": f"{n} preference pairs < {MIN_PAIRS}: no {kind} adapter "
                                          "trained; add feedback or lower the pair margin", "rows": n})


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["sft_adapter"])
def dpo_adapter(context: dg.AssetExecutionContext, config: DpoConfig, home: ProjectHome,
                base_model: BaseModelResource, preference_pairs: pl.DataFrame) -> dg.MaterializeResult:
    """DPO on the preference pairs, continuing from the SFT adapter (which is also the reference policy)."""
    from training.trainers import train_dpo

    rows = _pairs(preference_pairs)
    if len(rows) < MIN_PAIRS:
        return _skip("dpo", len(rows))
    start = _sft_adapter(context)
    metrics = train_dpo(rows, base_model.dir(), adapter_dir(home.root(), "dpo"), to_settings("dpo", config),
                        start_adapter=start, on_log=_logger(context, "dpo"))
    return _result("dpo", metrics, len(rows), {"start_adapter": str(start)})


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE)
def orpo_adapter(context: dg.AssetExecutionContext, config: OrpoConfig, home: ProjectHome,
                 base_model: BaseModelResource, preference_pairs: pl.DataFrame) -> dg.MaterializeResult:
    """ORPO on the preference pairs, from the base model (ORPO needs no SFT stage)."""
    from training.trainers import train_orpo

    rows = _pairs(preference_pairs)
    if len(rows) < MIN_PAIRS:
        return _skip("orpo", len(rows))
    metrics = train_orpo(rows, base_model.dir(), adapter_dir(home.root(), "orpo"), to_settings("orpo", config),
                         on_log=_logger(context, "orpo"))
    return _result("orpo", metrics, len(rows))


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["sft_adapter"])
def grpo_adapter(context: dg.AssetExecutionContext, config: GrpoConfig, home: ProjectHome,
                 base_model: BaseModelResource, sft_dataset: pl.DataFrame) -> dg.MaterializeResult:
    """GRPO (trl's maintained RL trainer; PPO is gone from trl 1.16) from the SFT adapter, rewarded by CUAD match."""
    if not config.enabled:
        return dg.MaterializeResult(metadata={"skipped": "disabled (set enabled: true in this asset's config)"})
    from training.trainers import cuad_match_reward, train_grpo

    rows = [{"prompt": json.loads(r["prompt_json"]), "answers": [r["answer"]]} for r in sft_dataset.to_dicts()]
    metrics = train_grpo(rows, base_model.dir(), adapter_dir(home.root(), "grpo"), to_settings("grpo", config),
                         cuad_match_reward, start_adapter=_sft_adapter(context), on_log=_logger(context, "grpo"))
    return _result("grpo", metrics, len(rows), {"reward": "CUAD match (word Jaccard >= 0.5 with the answer), "
                                                          "as in the benchmark and the gate"})
