"""Held-out and sufficiency checks for the fine-tuning data."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from selfinstruct_assets.finetune.adapter_assets import MIN_PAIRS
from selfinstruct_assets.held_out import eval_rows


@dg.asset_check(
    asset="sft_dataset",
    blocking=True,
    additional_deps=["cuad_contracts"],
    description="no SFT example comes from an eval-split contract",
)
def sft_dataset_held_out(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    n = eval_rows(duckdb, "sft_dataset")
    return dg.AssetCheckResult(passed=n == 0, metadata={"eval_split_rows": n})


@dg.asset_check(
    asset="rag_responses",
    blocking=True,
    additional_deps=["cuad_contracts"],
    description="candidate answers (the source of preference pairs) come from train-split contracts only",
)
def rag_responses_held_out(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    n = eval_rows(duckdb, "rag_responses")
    return dg.AssetCheckResult(passed=n == 0, metadata={"eval_split_rows": n})


@dg.asset_check(
    asset="preference_pairs",
    blocking=True,
    additional_deps=["cuad_contracts"],
    description="no preference pair comes from an eval-split contract",
)
def preference_pairs_held_out(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    n = eval_rows(duckdb, "preference_pairs")
    return dg.AssetCheckResult(passed=n == 0, metadata={"eval_split_rows": n})


@dg.asset_check(asset="preference_pairs", description=f"at least {MIN_PAIRS} pairs, so DPO and ORPO can train")
def preference_pairs_minimum(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        (n,) = conn.execute("select count(*) from preference_pairs").fetchone()
    return dg.AssetCheckResult(
        passed=n >= MIN_PAIRS, severity=dg.AssetCheckSeverity.ERROR, metadata={"pairs": n, "minimum": MIN_PAIRS}
    )


FINETUNE_CHECKS = [sft_dataset_held_out, rag_responses_held_out, preference_pairs_held_out, preference_pairs_minimum]
