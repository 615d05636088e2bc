"""Blocking check on the serving gate: a candidate worse than the served adapter never reaches serving_model."""

import dagster as dg
import polars as pl

from selfinstruct.serving.decision import verdict_of


@dg.asset_check(
    asset="serving_candidate",
    blocking=True,
    description="the candidate is not worse than the served adapter by more than the tolerance, at 95 % "
    "confidence on the benchmark run's paired questions",
)
def candidate_not_worse(serving_candidate: pl.DataFrame) -> dg.AssetCheckResult:
    verdict = verdict_of(serving_candidate.row(0, named=True))
    return dg.AssetCheckResult(
        passed=bool(verdict["passed"]),
        metadata={k: v for k, v in verdict.items() if isinstance(v, (str, int, float, bool))},
    )


SERVING_CHECKS = [candidate_not_worse]
