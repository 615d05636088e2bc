"""Blocking checks on the judges: each was trained on train-split contracts only."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from selfinstruct.judging.trained_judge import METRICS_FILE
from selfinstruct_assets.held_out import trained_only_on_train


@dg.asset_check(
    asset="answer_judge",
    blocking=True,
    additional_deps=["cuad_contracts"],
    description="the answer judge was trained on train-split contracts only",
)
def answer_judge_train_only(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    return trained_only_on_train(context, duckdb, "answer_judge", METRICS_FILE)


@dg.asset_check(
    asset="rerank_judge",
    blocking=True,
    additional_deps=["cuad_contracts"],
    description="the reference-free judge was trained on train-split contracts only",
)
def rerank_judge_train_only(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    return trained_only_on_train(context, duckdb, "rerank_judge", METRICS_FILE)


EVALUATION_CHECKS = [answer_judge_train_only, rerank_judge_train_only]
