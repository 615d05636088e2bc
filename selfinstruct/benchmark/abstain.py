"""When to say "No such clause.": a margin on the span scorer's gap, chosen on train-split questions only.

    answers = scorer_answers(scorer, train_questions, contexts, 6, margin=float("-inf"))  # always quote, keep gaps
    rule = choose_margin(train_questions, answers)           # {"margin": 0.41, "detection_f1": ..., ...}
    held_out = [with_margin(a, rule["margin"]) for a in eval_answers]

Dagster-free. An answer's `score` is the best window's normalised log-prob minus "No such clause."'s (the gap);
the model quotes when the gap exceeds the margin. `choose_margin` picks, among the gaps seen, the margin with
the best clause-detection F1 whose CUAD match on answerable questions stays within `max_loss` of always quoting
(ties: the smallest margin). The eval split is never looked at, so the rule carries over to contracts the
project has never been given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from selfinstruct.answering import Answer
from selfinstruct.benchmark.summary import detection
from selfinstruct.core.metrics import cuad_match

NEVER = float("-inf")  # the margin of a model that always quotes


def with_margin(answer: Answer, margin: float) -> Answer:
    """The answer under `margin`: a quotation whose gap is at or below it becomes "no clause" (keeping the span
    in `best_span`). An answer that already says no clause stays so."""
    if not answer.has_clause or answer.score > margin:
        return answer
    return Answer.none(answer.score, **{**answer.method_detail, "best_span": answer.text, "margin": margin})


def _outcome(questions: Sequence[dict], answers: Sequence[Answer], margin: float) -> tuple[float, float]:
    """(detection F1, mean CUAD match on answerable questions) when quoting needs a gap above `margin`."""
    said = [a.has_clause and a.score > margin for a in answers]
    truth = [bool(q["gold_answers"]) for q in questions]
    matches = [
        cuad_match(a.text, q["gold_answers"]) if s else 0.0
        for q, a, s in zip(questions, answers, said)
        if q["gold_answers"]
    ]
    f1 = detection([2 * int(t) + int(x) for x, t in zip(said, truth)])[2]
    return f1, (sum(matches) / len(matches) if matches else 0.0)


def choose_margin(questions: Sequence[dict], answers: Sequence[Answer], max_loss: float = 0.02) -> dict:
    """The margin with the best detection F1 on these (train-split) answers, losing at most `max_loss` CUAD match.

    `answers` must have been computed with margin -inf (every answer quotes, its score is the gap). Returns the
    margin and what it gave on these questions, beside always quoting (margin -inf): the record a run keeps.
    """
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    if any(not a.has_clause and "best_span" in a.method_detail for a in answers):
        raise ValueError("choose_margin needs answers scored with margin -inf (some abstained under a margin)")
    base_f1, base_match = _outcome(questions, answers, NEVER)
    best = {"margin": NEVER, "detection_f1": base_f1, "cuad_match": base_match}
    cuts = sorted({a.score for a in answers if a.has_clause and math.isfinite(a.score)})
    for m in cuts:
        f1, match = _outcome(questions, answers, m)
        if base_match - match <= max_loss + 1e-12 and f1 > best["detection_f1"] + 1e-12:
            best = {"margin": m, "detection_f1": f1, "cuad_match": match}
    return {
        **best,
        "always_quote_detection_f1": base_f1,
        "always_quote_cuad_match": base_match,
        "n_questions": len(questions),
        "n_answerable": sum(bool(q["gold_answers"]) for q in questions),
        "max_loss": max_loss,
    }
