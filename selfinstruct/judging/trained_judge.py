"""A trained answer judge: a MiniLM cross-encoder labelled by CUAD match, and its agreement with CUAD match.

Dagster-free. `TrainedJudge` scores answers with a cross-encoder folder that `training.judge` wrote: it starts
from the packaged all-MiniLM-L6-v2 weights (a fresh one-logit head; nothing is downloaded) and learns
P(CUAD match) from train-split (question[, gold], candidate answer) rows, which
`judge_candidates.build_judge_examples` makes without any LM (contract sentence windows near a gold clause and
away from it, labelled by CUAD match: a proxy for model answers). `judge_rows` applies it to pipeline rows,
`calibrate_threshold` picks its cut, and `agreement_report` compares any judge's scores with CUAD match labels
(agreement, Cohen's kappa, AUROC).

    .venv/bin/python -m pytest -q tests/test_trained_judge.py
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from selfinstruct.answering import is_no_clause
from selfinstruct.answering.right import is_right
from selfinstruct.core.stats import agreement_rate, auroc, cohen_kappa

METRICS_FILE = "judge_metrics.json"


def judge_input(question: str, gold: str | Sequence[str] | None, candidate: str, use_gold: bool) -> tuple[str, str]:
    """The (first, second) texts the cross-encoder reads; golds are joined, as CUAD matches any of them."""
    if not use_gold:
        return question, candidate
    golds = [gold] if isinstance(gold, str) else list(gold or [])
    return f"{question}\nReference: {' | '.join(golds)}", candidate


class TrainedJudge:
    """Scores answers in [0, 1] (P(CUAD match)) with a cross-encoder folder written by `training.judge.train_judge`."""

    def __init__(self, model_dir: str | Path, use_gold: bool | None = None, batch_size: int = 32):
        from sentence_transformers.cross_encoder import CrossEncoder

        meta = Path(model_dir) / METRICS_FILE
        saved = json.loads(meta.read_text()) if meta.exists() else {}
        self.use_gold = saved.get("settings", {}).get("use_gold", True) if use_gold is None else use_gold
        self.threshold = float(saved.get("threshold", 0.5))  # P(match) at or above it reads as "right"
        self.batch_size = batch_size
        self.model = CrossEncoder(str(model_dir), device="cpu", local_files_only=True)

    def score(
        self,
        questions: Sequence[str],
        candidates: Sequence[str],
        golds: Sequence[str | Sequence[str] | None] | None = None,
    ) -> np.ndarray:
        if self.use_gold and golds is None:
            raise ValueError("this judge was trained with gold answers: pass golds")
        golds = golds if golds is not None else [None] * len(questions)
        pairs = [judge_input(q, g, c, self.use_gold) for q, g, c in zip(questions, golds, candidates)]
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        # num_labels=1: the CrossEncoder's default activation is a sigmoid, so these are probabilities.
        return np.asarray(
            self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False), dtype=np.float32
        )


# ---------------------------------------------------------------------------------------------------- agreement


def agreement_report(
    judge_scores: Sequence[float | None], cuad_labels: Sequence[float | int | None], threshold: float = 0.5
) -> dict:
    """Judge vs CUAD match: agreement and Cohen's kappa at `threshold`, AUROC of the raw scores, pairs used.

    Pairs with a missing score or label are left out (and counted as n_missing), never read as 0.
    """
    if len(judge_scores) != len(cuad_labels):
        raise ValueError(f"{len(judge_scores)} judge scores but {len(cuad_labels)} CUAD labels")
    keep = [
        (float(s), int(float(y) >= 0.5))
        for s, y in zip(judge_scores, cuad_labels)
        if s is not None and y is not None and s == s and y == y
    ]
    said = [int(s >= threshold) for s, _ in keep]
    truth = [y for _, y in keep]
    return {
        "agreement": agreement_rate(said, truth),
        "kappa": cohen_kappa(said, truth),
        "auroc": auroc([s for s, _ in keep], truth),
        "n": len(keep),
        "n_missing": len(judge_scores) - len(keep),
        "threshold": threshold,
    }


# ---------------------------------------------------------------------------------------------------- pipeline use


def judge_rows(judge: TrainedJudge, rows: Sequence[dict]) -> list[float]:
    """P(the answer is right) per row {question, answer, gold_answers}, in the one answer format.

    "No such clause." is right exactly when there is no gold; a quote where there is no gold is wrong. Those
    cases need no model; the cross-encoder scores a quote against the gold clauses.
    """
    out: list[float | None] = [None] * len(rows)
    ask = []
    for i, r in enumerate(rows):
        golds = [g for g in (r.get("gold_answers") or []) if g]
        if not golds or is_no_clause(r["answer"]):
            out[i] = is_right(r["answer"], golds)  # the one rule; no model needed for these
        else:
            ask.append(i)
    if ask:
        scores = judge.score(
            [rows[i]["question"] for i in ask],
            [rows[i]["answer"] for i in ask],
            [list(rows[i]["gold_answers"]) for i in ask],
        )
        for i, s in zip(ask, scores):
            out[i] = float(s)
    return [float(x) for x in out if x is not None]  # every row was graded above


def calibrate_threshold(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The cut on P(match) with the best Cohen's kappa against `labels` (0.5 when nothing beats it).

    A cross-encoder's raw probabilities are not calibrated after a few hundred steps (F's first run said
    "match" to everything at 0.5: kappa 0 with AUROC 0.73); the cut is chosen on train-split rows it never
    trained on, so the held-out kappa stays an honest estimate.
    """
    best, best_k = 0.5, cohen_kappa([int(s >= 0.5) for s in scores], list(labels))
    for t in sorted(set(np.quantile(np.asarray(scores, dtype=float), np.linspace(0.05, 0.95, 19)).tolist())):
        k = cohen_kappa([int(s >= t) for s in scores], list(labels))
        if k is not None and (best_k is None or k > best_k):
            best, best_k = float(t), k
    return best


def trained_contracts(model_dir: str | Path, metrics_file: str = METRICS_FILE) -> list[str] | None:
    """The contract ids a published model was trained on (None when its metrics file does not say)."""
    meta = Path(model_dir) / metrics_file
    return json.loads(meta.read_text()).get("trained_contracts") if meta.exists() else None
