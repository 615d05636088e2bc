"""LoRA adapters trained by `training/` (SFT, DPO, ORPO, GRPO), published under <home>/adapters/<name>.

Thin assets: rows from DuckDB become conversational datasets, `training.trainers` does the work, and the
run log shows progress. An adapter folder only ever appears complete (atomic rename in `training`).
"""

import json

import dagster as dg
import polars as pl

from resources.llm import LLMResource
from resources.project import ProjectHome

from ..constants import DUCKDB_POOL, FINETUNE
from .plots import line_chart_md
from .prompts import preference_row, sft_row

MIN_PAIRS = 4  # below this DPO/ORPO are skipped (and the preference_pairs_minimum check fails)


ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TrainConfig(dg.Config):
    epochs: float = 1.0
    max_steps: int = -1  # -1: run `epochs`
    learning_rate: float = 0.0  # 0: the trainer's default (DPO 5e-5, GRPO 1e-5; 2e-4 lost to 5e-5 for DPO)
    # One row per micro-batch: with the vocabulary's 49k logits per token, a batch of 4 DPO pairs peaked at
    # 12 GB on the CPU and one at 4.8 GB (benchmarks/RESULTS.md); accumulation keeps the step at 4 rows.
    batch_size: int = 1
    grad_accum: int = 4
    max_length: int = 768  # tokens of prompt + answer
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: list[str] = ALL_LINEAR  # every linear layer of the Llama block
    beta: float = 0.1  # DPO/ORPO only
    seed: int = 0


class SftConfig(TrainConfig):
    # A few epochs at a LoRA-sized learning rate: one epoch at 2e-4 left the base model's answers unchanged.
    epochs: float = 3.0
    learning_rate: float = 1e-3


class OrpoConfig(TrainConfig):
    learning_rate: float = 1e-3  # ORPO starts from the base model, so it needs SFT's rate to learn the answer form


def _settings(kind: str, c: TrainConfig):
    from training.config import settings_from_dict

    values = {"epochs": c.epochs, "max_steps": c.max_steps, "batch_size": c.batch_size, "grad_accum": c.grad_accum,
              "max_length": c.max_length, "seed": c.seed,
              "lora": {"r": c.lora_r, "alpha": c.lora_alpha, "target_modules": list(c.lora_targets)}}
    if c.learning_rate > 0:
        values["learning_rate"] = c.learning_rate
    if kind in ("dpo", "orpo"):
        values["beta"] = c.beta
    if kind == "grpo":
        values.pop("max_length")
        values["batch_size"] = max(4, c.batch_size)  # a multiple of num_generations (4)
    return settings_from_dict(kind, values)


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
def sft_adapter(context: dg.AssetExecutionContext, config: SftConfig, home: ProjectHome, llm: LLMResource,
                sft_dataset: pl.DataFrame) -> dg.MaterializeResult:
    """LoRA supervised fine-tuning of the base model on `sft_dataset`."""
    from training.trainers import train_sft

    rows = [sft_row(json.loads(r["prompt_json"]), r["answer"]) for r in sft_dataset.to_dicts()]
    metrics = train_sft(rows, llm.base_model_dir(), home.subdir("adapters") / "sft", _settings("sft", config),
                        on_log=_logger(context, "sft"))
    return _result("sft", metrics, len(rows))


def _pairs(preference_pairs: pl.DataFrame) -> list[dict]:
    return [preference_row(json.loads(r["prompt_json"]), r["chosen"], r["rejected"])
            for r in preference_pairs.to_dicts()]


def _skip(kind: str, n: int) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"skipped": f"{n} preference pairs < {MIN_PAIRS}: no {kind} adapter "
                                          "trained; add feedback or lower the pair margin", "rows": n})


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["sft_adapter"])
def dpo_adapter(context: dg.AssetExecutionContext, config: TrainConfig, home: ProjectHome, llm: LLMResource,
                preference_pairs: pl.DataFrame) -> dg.MaterializeResult:
    """DPO on the preference pairs, continuing from the SFT adapter (which is also the reference policy)."""
    from training.trainers import train_dpo

    rows = _pairs(preference_pairs)
    if len(rows) < MIN_PAIRS:
        return _skip("dpo", len(rows))
    adapters = home.subdir("adapters")
    metrics = train_dpo(rows, llm.base_model_dir(), adapters / "dpo", _settings("dpo", config),
                        start_adapter=adapters / "sft", on_log=_logger(context, "dpo"))
    return _result("dpo", metrics, len(rows), {"start_adapter": str(adapters / "sft")})


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE)
def orpo_adapter(context: dg.AssetExecutionContext, config: OrpoConfig, home: ProjectHome, llm: LLMResource,
                 preference_pairs: pl.DataFrame) -> dg.MaterializeResult:
    """ORPO on the preference pairs, from the base model (ORPO needs no SFT stage)."""
    from training.trainers import train_orpo

    rows = _pairs(preference_pairs)
    if len(rows) < MIN_PAIRS:
        return _skip("orpo", len(rows))
    metrics = train_orpo(rows, llm.base_model_dir(), home.subdir("adapters") / "orpo", _settings("orpo", config),
                         on_log=_logger(context, "orpo"))
    return _result("orpo", metrics, len(rows))


class GrpoConfig(TrainConfig):
    enabled: bool = False  # GRPO samples 4 answers per prompt per step: slow on CPU, so off by default
    max_steps: int = 8


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["sft_adapter"])
def grpo_adapter(context: dg.AssetExecutionContext, config: GrpoConfig, home: ProjectHome, llm: LLMResource,
                 sft_dataset: pl.DataFrame) -> dg.MaterializeResult:
    """GRPO (trl's maintained RL trainer; PPO is gone from trl 1.16) from the SFT adapter, rewarded by CUAD match."""
    if not config.enabled:
        return dg.MaterializeResult(metadata={"skipped": "disabled (set enabled: true in this asset's config)"})
    from training.trainers import cuad_match_reward, train_grpo

    rows = [{"prompt": json.loads(r["prompt_json"]), "answers": [r["answer"]]} for r in sft_dataset.to_dicts()]
    adapters = home.subdir("adapters")
    metrics = train_grpo(rows, llm.base_model_dir(), adapters / "grpo", _settings("grpo", config), cuad_match_reward,
                         start_adapter=adapters / "sft", on_log=_logger(context, "grpo"))
    return _result("grpo", metrics, len(rows), {"reward": "CUAD match (word Jaccard >= 0.5 with the answer)"})
