"""`judge_rerank`: a reference-free answer judge picks among the candidate windows, and abstains below its threshold.

    judge = TrainedJudge(folder)                    # trained with use_gold=False (it never sees a gold clause)
    answer = rerank_answer(judge, question, windows)  # the window it scores highest, or "no such clause"

Dagster-free. A best-of-n method scored like every other row: the same windows (`answering.windows.top_windows`)
the span scorer compares, no LM at all. The judge's threshold was calibrated on train-split contracts it did not
train on, so abstaining decides nothing on the eval split.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfinstruct.answering import Answer, Span
from selfinstruct.answering.windows import top_windows

NO_TEXT = "no retrievable text"


def rerank_answer(judge, question: str, windows: Sequence[Span], threshold: float | None = None) -> Answer:
    """The window `judge` scores highest for `question`; "no clause" when even that one is below `threshold`
    (default: the judge's calibrated threshold). `Answer.score` is the best window's score."""
    if getattr(judge, "use_gold", False):
        raise ValueError("judge_rerank needs a judge trained without gold clauses (use_gold=False)")
    if not windows:
        return Answer.none(0.0, method="judge_rerank", n_candidates=0)
    scores = [float(s) for s in judge.score([question] * len(windows), [w.text for w in windows])]
    best = max(range(len(windows)), key=lambda i: (scores[i], -i))
    cut = judge.threshold if threshold is None else threshold
    detail = {"method": "judge_rerank", "n_candidates": len(windows), "threshold": cut}
    if scores[best] < cut:
        return Answer.none(scores[best], best_span=windows[best].text, **detail)
    return Answer.of(windows[best], scores[best], **detail)


def rerank_answers(
    judge,
    questions: Sequence[dict],
    contexts: Sequence[Sequence[str]],
    n_windows: int,
    on_progress=None,
    threshold: float | None = None,
) -> list[Answer]:
    """`rerank_answer` per question over the same top windows the span scorer compares (0: every window);
    `threshold` -inf always quotes (the score is kept, so an abstain margin can be chosen afterwards)."""
    out = []
    for i, (q, passages) in enumerate(zip(questions, contexts)):
        if not passages:
            out.append(Answer.none(0.0, method="judge_rerank", reason=NO_TEXT))
        else:
            windows = top_windows(q["question"], passages, n_windows)
            out.append(rerank_answer(judge, q["question"], windows, threshold))
        if on_progress:
            on_progress(i + 1, len(questions))
    return out
