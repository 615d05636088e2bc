"""The columns of `benchmark_scores` / `benchmark_answers` and the metadata a benchmark run shows in the UI.

Dagster-free apart from building `MetadataValue`s. Explicit schemas: a first run whose column is all null must
not fix that column's type for every later run.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
import polars as pl

from selfinstruct.core.markdown import md_table
from selfinstruct.core.plots import bar_chart_md

_F, _S, _I, _B = pl.Float64, pl.Utf8, pl.Int64, pl.Boolean
_STATS = ["n", "n_answerable", "n_unanswerable", "n_no_context", "judge_missing"]
_FLOATS = [
    "cuad_match",
    "cuad_match_low",
    "cuad_match_high",
    "detection_precision",
    "detection_recall",
    "detection_f1",
    "detection_f1_low",
    "detection_f1_high",
    "token_f1",
    "exact_match",
    "judge_score",
    "mean_latency_s",
    "p_vs_standard",
    "mcnemar_p",
    "improvement_pct",
    "cuad_ratio",
    "cuad_match_quote",
    "abstain_margin",
]
SCORES_SCHEMA = {
    "method": _S,
    **{c: _I for c in _STATS},
    **{c: _F for c in _FLOATS},
    "model": _S,
    "adapter_id": _S,
    "judge": _S,
    "data_versions": _S,
    "run_id": _S,
    "created_at": pl.Datetime("us"),
}
ANSWERS_SCHEMA = {
    "run_id": _S,
    "created_at": pl.Datetime("us"),
    "method": _S,
    "question_id": _S,
    "contract_id": _S,
    "category": _S,
    "question": _S,
    "gold_answer": _S,
    "answer": _S,
    "has_clause": _B,
    "predicted_clause": _B,
    "right": _F,
    "cuad_match": _F,
    "quote_cuad_match": _F,
    "token_f1": _F,
    "exact_match": _F,
    "judge_score": _F,
    "answer_score": _F,
    "reason": _S,
    "latency_s": _F,
}
CACHE_SCHEMA = {"model_key": _S, "answer_key": _S, "value_json": _S, "created_at": pl.Datetime("us")}
SCORE_COLUMNS = [
    "method",
    "n_answerable",
    "n_unanswerable",
    "cuad_match",
    "cuad_match_low",
    "cuad_match_high",
    "detection_f1",
    "token_f1",
    "exact_match",
    "judge_score",
    "p_vs_standard",
    "mcnemar_p",
    "abstain_margin",
    "cuad_match_quote",
]
COST_COLUMNS = ["method", "n", "seconds", "mean_latency_s"]
HEADLINES = ("cuad_match", "detection_f1")  # per-method numeric metadata, plotted over materialisations


def report(summary: Sequence[dict]) -> dict:
    """Table, chart with 95 % error bars, and `cuad_match/<method>`-style numbers for the asset's plots."""
    labels = [s["method"] for s in summary]
    chart = bar_chart_md(
        labels,
        {"CUAD match": [s["cuad_match"] for s in summary], "detection F1": [s["detection_f1"] for s in summary]},
        "held-out scores (95 % intervals, clustered by contract)",
        errors={
            "CUAD match": [(s["cuad_match_low"], s["cuad_match_high"]) for s in summary],
            "detection F1": [(s["detection_f1_low"], s["detection_f1_high"]) for s in summary],
        },
    )
    numbers = {f"{k}/{s['method']}": float(s[k]) for s in summary for k in HEADLINES if s[k] is not None}
    cost = [{**s, "seconds": round((s.get("mean_latency_s") or 0.0) * s["n"], 1)} for s in summary]
    return {
        "methods": ", ".join(labels),
        **numbers,
        "scores": dg.MetadataValue.md(md_table(summary, SCORE_COLUMNS) + "\n\n" + chart),
        "cost": dg.MetadataValue.md(md_table(cost, COST_COLUMNS)),
    }
