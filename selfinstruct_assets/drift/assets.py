"""`drift_report`: are production queries, new contracts or quality drifting from what the adapters learned?

Declarative automation keeps it current: it re-materialises whenever one of its inputs changes (new
queries, new contracts, new feedback, a new benchmark), and `drift_sensor` acts on its decision.
"""

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import Field

from resources.project import ChromaResource, EmbedderResource
from selfinstruct.core.tables import append_rows
from selfinstruct.drift.inputs import DriftInputs, read_drift_inputs
from selfinstruct.drift.statistics import DriftThresholds, category_mix, decide, embedding_shift, flatten, quality_drop
from selfinstruct_assets.constants import DRIFT, DUCKDB_POOL

# Any input update re-runs it; unlike `eager()` a never-materialised input (no queries yet) does not block it.
ON_ANY_INPUT_UPDATE = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("on any input update")


class DriftConfig(dg.Config):
    recent_queries: int = Field(
        500, ge=1, description="the latest N production queries, compared with the training questions"
    )
    reference_chunks: int = Field(1000, ge=1, description="train-split chunks sampled as the contracts' reference")
    quality_window: int = Field(50, ge=1, description="the latest N feedback scores, compared with the earlier ones")
    # Defaults and meanings are DriftThresholds' (drift/statistics.py), which validates them again.
    embedding_shift: float = Field(
        DriftThresholds.embedding_shift,
        ge=0,
        allow_inf_nan=False,
        description="squared MMD above which recent texts count as shifted",
    )
    category_tvd: float = Field(
        DriftThresholds.category_tvd,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="total-variation distance between category mixes that counts as drift",
    )
    quality_drop: float = Field(
        DriftThresholds.quality_drop,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="drop of the recent mean score (0-1) below the baseline that counts as drift",
    )
    min_samples: int = Field(
        DriftThresholds.min_samples, ge=1, description="fewer recent items than this: reported but cannot trigger"
    )


def _schema(row: dict) -> dict:
    """Stable column types whatever this run's values (a statistic may be None today and a number tomorrow)."""
    text = ("run_id", "reasons", "_mix", "top_shift")
    return {
        k: pl.Datetime("us")
        if k == "created_at"
        else pl.Boolean
        if k == "drifted"
        else pl.Utf8
        if k.endswith(text)
        else pl.Float64
        for k in row
    }


def drift_statistics(inputs: DriftInputs, embed, stored) -> dict[str, dict]:
    """Every drift source, always present (empty sides come back as None), so the table keeps one shape."""
    train_q = embed(inputs.training_questions)
    recent_q = embed(inputs.recent_questions)
    return {
        "queries_embedding": embedding_shift(train_q, recent_q),
        # Without categories (no annotations loaded) nothing can be assigned: both sides count as empty.
        "queries_category": category_mix(
            train_q if inputs.categories else train_q[:0],
            recent_q if inputs.categories else recent_q[:0],
            embed(inputs.category_questions or ["(no category)"]),
            inputs.categories or ["(no category)"],
        ),
        "contracts_embedding": embedding_shift(stored(inputs.reference_chunk_ids), stored(inputs.added_chunk_ids)),
        "feedback_quality": quality_drop(inputs.feedback_baseline, inputs.feedback_recent),
        "eval_quality": quality_drop(inputs.eval_baseline, inputs.eval_recent),
    }


@dg.asset(
    group_name=DRIFT,
    pool=DUCKDB_POOL,
    automation_condition=ON_ANY_INPUT_UPDATE,
    deps=["sft_dataset", "query_log", "human_feedback", "benchmark_scores", "added_contract_chunks"],
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    duckdb: DuckDBResource,
    embedder: EmbedderResource,
    chroma: ChromaResource,
) -> dg.MaterializeResult:
    """Embedding shift and category mix of recent queries and new contracts, and quality trends; appended."""
    with duckdb.get_connection() as conn:
        inputs = read_drift_inputs(
            lambda sql: conn.execute(sql).fetchall(),
            config.recent_queries,
            config.reference_chunks,
            config.quality_window,
        )
    emb = embedder.get()
    store = chroma.store(emb)
    stats = drift_statistics(
        inputs, lambda texts: emb.embed(list(texts)) if texts else np.zeros((0, emb.dim)), store.embeddings
    )
    thresholds = DriftThresholds(config.embedding_shift, config.category_tvd, config.quality_drop, config.min_samples)
    drifted, reasons = decide(stats, thresholds)
    row = {
        "run_id": context.run_id,
        "created_at": datetime.now(UTC).replace(tzinfo=None),
        "drifted": drifted,
        "reasons": "; ".join(reasons),
        **flatten(stats),
    }
    append_rows(duckdb, "drift_report", pl.DataFrame([row], schema=_schema(row)))
    context.log.info(f"drift_report: drifted={drifted}; " + "; ".join(reasons))
    return dg.MaterializeResult(
        metadata={
            "drifted": drifted,
            "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "(none)"),
            "recent_queries": len(inputs.recent_questions),
            "added_chunks": len(inputs.added_chunk_ids),
            **{k: v for k, v in flatten(stats).items() if isinstance(v, (int, float)) and v is not None},
        }
    )
