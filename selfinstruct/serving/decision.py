"""A gate decision as one table row: what `serving_candidate` outputs, `promotion_decisions` keeps and
`serving_model` promotes from.

    verdict = gate(best, served)                                    # gate.py
    row = decision_row(best, verdict, snapshot, current(root), run_id)
    promote(root, entry_of(row), row["reason"])                     # registry.py, when verdict passed

Dagster-free.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

SCORES = ("cuad_match", "judge_score", "token_f1", "exact_match")  # the candidate's scores kept with its entry
DECISIONS_SCHEMA = {
    "run_id": pl.Utf8,
    "created_at": pl.Datetime("us"),
    "candidate_method": pl.Utf8,
    "candidate_adapter_id": pl.Utf8,
    "served_adapter_id": pl.Utf8,
    "metric": pl.Utf8,
    "candidate_score": pl.Float64,
    "served_score": pl.Float64,
    "tolerance": pl.Float64,
    "passed": pl.Boolean,
    "reason": pl.Utf8,
    "delta_low": pl.Float64,
    "delta_high": pl.Float64,
    "n_paired": pl.Int64,
}
CANDIDATE_SCHEMA = {
    **DECISIONS_SCHEMA,
    "delta": pl.Float64,
    "path": pl.Utf8,
    "benchmark_run_id": pl.Utf8,
    **{name: pl.Float64 for name in SCORES},
}


def no_candidate(metric: str, tolerance: float) -> dict:
    """The verdict when the latest benchmark run scored no adapter."""
    return {
        "passed": False,
        "reason": "no adapter has a score in the latest benchmark run",
        "metric": metric,
        "tolerance": tolerance,
    }


def decision_row(
    candidate: dict | None, verdict: dict, snapshot: Path | None, served: dict | None, run_id: str
) -> dict:
    """One CANDIDATE_SCHEMA row: the candidate (a benchmark row, or None), its snapshot and the gate's verdict."""
    cand = candidate or {}
    return {
        "run_id": run_id,
        "created_at": datetime.now(UTC).replace(tzinfo=None),
        "candidate_method": cand.get("method"),
        "candidate_adapter_id": cand.get("adapter_id"),
        "served_adapter_id": (served or {}).get("adapter_id"),
        "metric": verdict["metric"],
        "candidate_score": verdict.get("candidate"),
        "served_score": verdict.get("current"),
        "tolerance": verdict["tolerance"],
        "passed": verdict["passed"],
        "reason": verdict["reason"],
        "delta_low": verdict.get("low"),
        "delta_high": verdict.get("high"),
        "n_paired": verdict.get("n_paired"),
        "delta": verdict.get("delta"),
        "path": str(snapshot) if snapshot else None,
        "benchmark_run_id": cand.get("run_id"),
        **{name: cand.get(name) for name in SCORES},
    }


def entry_of(row: dict) -> dict:
    """The entry `promote` serves for a decision row that passed."""
    return {
        "method": row["candidate_method"],
        "adapter_id": row["candidate_adapter_id"],
        "path": row["path"],
        "scores": {name: row[name] for name in SCORES},
        "benchmark_run_id": row["benchmark_run_id"],
    }


def verdict_of(row: dict) -> dict:
    """The gate's verdict as `gate` returned it, without the values it could not compute."""
    verdict = {
        "passed": row["passed"],
        "metric": row["metric"],
        "candidate": row["candidate_score"],
        "current": row["served_score"],
        "delta": row["delta"],
        "tolerance": row["tolerance"],
        "reason": row["reason"],
        "low": row.get("delta_low"),
        "high": row.get("delta_high"),
        "n_paired": row.get("n_paired"),
    }
    return {k: v for k, v in verdict.items() if v is not None}
