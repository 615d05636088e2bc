"""The benchmark's judge column: the trained answer judge (W2's cross-encoder) or the LM judge, and how well it
agrees with CUAD match.

    scores = trained_scores(TrainedJudge(path), rows, golds)   # golds: question_id -> gold clauses
    rows = with_judge(rows, scores); agreement = judge_agreement(rows, threshold=judge.threshold)

Dagster-free. A row's "right" label, which the judge is compared with, is CUAD match on an answerable question
and "said no clause" on an unanswerable one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from selfinstruct.answering import NO_CLAUSE
from selfinstruct.core.parallel import thread_map
from selfinstruct.judging.judges import judge_factuality
from selfinstruct.judging.trained_judge import agreement_report, judge_rows


def trained_scores(judge, rows: Sequence[dict], golds: Mapping[str, list[str]]) -> list[float]:
    return judge_rows(
        judge,
        [
            {
                "question": r["question"],
                "gold_answers": golds[r["question_id"]],
                "answer": r["answer"] if r["predicted_clause"] else NO_CLAUSE,
            }
            for r in rows
        ],
    )


def lm_scores(judge_lm, rows: Sequence[dict], threads: int = 4) -> list[float | None]:
    """The LM judge's factuality of each quotation vs the gold clause; None on unanswerable questions."""

    def one(r: dict) -> float | None:
        if not r["has_clause"]:
            return None
        return judge_factuality(judge_lm, r["question"], r["gold_answer"], r["answer"]).score

    return thread_map(one, list(rows), threads)


def with_judge(rows: Sequence[dict], scores: Sequence[float | None] | None) -> list[dict]:
    scores = scores if scores is not None else [None] * len(rows)
    return [{**r, "judge_score": s} for r, s in zip(rows, scores)]


def right(row: Mapping) -> float:
    """The row's `answering.right.is_right` label, as `benchmark.methods.score` recorded it; rows written before
    it was recorded carry the same rule's inputs (CUAD match, or whether the method said no clause)."""
    if row.get("right") is not None:
        return float(row["right"])
    return float(row["cuad_match"]) if row["has_clause"] else float(not row["predicted_clause"])


def judge_agreement(rows: Sequence[dict], threshold: float = 0.5) -> dict:
    """Agreement, Cohen's kappa and AUROC of the judge column vs the "right" label, over rows it scored; a score at
    or above `threshold` (the trained judge's calibrated cut, as ai_feedback and rag_eval read it) says "right"."""
    report = agreement_report([r.get("judge_score") for r in rows], [right(r) for r in rows], threshold)
    out = {f"judge_{k}": float(report[k]) for k in ("agreement", "kappa", "auroc") if report[k] is not None}
    return {**out, "judge_threshold": float(threshold)} if out else out
