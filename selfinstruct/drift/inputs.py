"""What `drift_report` compares, read from the DuckDB tables; a table that does not exist yet reads as empty.

    inputs = read_drift_inputs(lambda sql: conn.execute(sql).fetchall())

Dagster-free. The training distribution is the questions the adapters were fine-tuned on (`sft_dataset`)
and a sample of train-split chunks; the recent side is the latest production queries (`query_log`) and the
chunks of contracts added through the inbox. Quality compares the latest feedback scores with the earlier
ones, and the best adapter's per-question CUAD match in the latest benchmark run with the earlier runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from selfinstruct.core.artifacts import ADAPTER_METHODS
from selfinstruct.core.known import Query, existing_tables


@dataclass
class DriftInputs:
    training_questions: list[str] = field(default_factory=list)
    recent_questions: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    category_questions: list[str] = field(default_factory=list)
    reference_chunk_ids: list[str] = field(default_factory=list)
    added_chunk_ids: list[str] = field(default_factory=list)
    feedback_baseline: list[float] = field(default_factory=list)
    feedback_recent: list[float] = field(default_factory=list)
    eval_baseline: list[float] = field(default_factory=list)
    eval_recent: list[float] = field(default_factory=list)


def _column(query: Query, sql: str) -> list:
    return [row[0] for row in query(sql)]


def _eval_scores(query: Query) -> tuple[list[float], list[float]]:
    """Per-question CUAD match of each run's best adapter: (earlier runs, latest run)."""
    methods = ", ".join(f"'{m}'" for m in ADAPTER_METHODS)
    best = query(
        f"select run_id, arg_max(method, cuad_match) from benchmark_scores where method in ({methods}) "
        "and cuad_match is not null group by run_id order by max(created_at)"
    )
    if not best:
        return [], []
    baseline: list[float] = []
    for i, (run_id, method) in enumerate(best):
        # cuad_match is defined on answerable questions only; unanswerable ones carry NULL there.
        scores = _column(
            query,
            f"select cuad_match from benchmark_answers where run_id = '{run_id}' "
            f"and method = '{method}' and cuad_match is not null order by question_id",
        )
        if i == len(best) - 1:
            return baseline, scores
        baseline += scores
    return baseline, []


def read_drift_inputs(
    query: Query, recent_queries: int = 500, reference_chunks: int = 1000, quality_window: int = 50
) -> DriftInputs:
    tables = existing_tables(query)
    out = DriftInputs()
    if "sft_dataset" in tables:
        out.training_questions = _column(query, "select question from sft_dataset order by example_id")
    if "query_log" in tables:
        out.recent_questions = _column(
            query, f"select question from query_log order by asked_at desc, query_id limit {int(recent_queries)}"
        )
    if "cuad_annotations" in tables:
        pairs = query("select category, min(question) from cuad_annotations group by category order by category")
        out.categories, out.category_questions = [c for c, _ in pairs], [q for _, q in pairs]
    if {"contract_chunks", "cuad_contracts"} <= tables:
        out.reference_chunk_ids = _column(
            query,
            "select k.chunk_id from contract_chunks k join cuad_contracts c "
            "using (contract_id) where c.split = 'train' "
            f"order by hash(k.chunk_id) limit {int(reference_chunks)}",
        )
    if "added_contract_chunks" in tables:
        out.added_chunk_ids = _column(query, "select chunk_id from added_contract_chunks order by chunk_id")
    if "human_feedback" in tables:
        scores = [float(s) for s in _column(query, "select score from human_feedback order by file, line")]
        cut = max(0, len(scores) - int(quality_window))
        out.feedback_baseline, out.feedback_recent = scores[:cut], scores[cut:]
    if {"benchmark_scores", "benchmark_answers"} <= tables:
        out.eval_baseline, out.eval_recent = _eval_scores(query)
    return out
