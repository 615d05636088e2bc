"""How far choosing alone could go: the share of answerable questions for which some candidate window is right.

    c = candidate_ceiling(questions, contexts, n_windows=6)   # {"candidate_ceiling": 0.38, ..._low, ..._high, ...}

Dagster-free. Every local model, `judge_rerank` and the snapped RAG rows choose among the same windows
(`answering.windows.top_windows` of the retrieved chunks), so no method that chooses can beat this share on CUAD
match; a method far below it chooses badly, a ceiling far below the oracle row means retrieval or the window
pre-filter lost the clause. Needs no model. The interval is Wilson's over questions (not clustered by contract).
"""

from __future__ import annotations

from collections.abc import Sequence

from selfinstruct.answering.right import is_right
from selfinstruct.answering.windows import top_windows
from selfinstruct.core.stats import wilson_interval


def candidate_ceiling(questions: Sequence[dict], contexts: Sequence[Sequence[str]], n_windows: int) -> dict:
    """candidate_ceiling (share of answerable questions with a right window among the top `n_windows`; 0: every
    window), its 95 % interval and the counts; None when no question is answerable."""
    hits = n = 0
    for q, passages in zip(questions, contexts, strict=True):
        if not q.get("gold_answers"):
            continue
        n += 1
        hits += any(is_right(w.text, q["gold_answers"]) for w in top_windows(q["question"], passages, n_windows))
    low, high = wilson_interval(hits, n)
    return {
        "candidate_ceiling": hits / n if n else None,
        "candidate_ceiling_low": low,
        "candidate_ceiling_high": high,
        "candidate_ceiling_hits": hits,
        "candidate_ceiling_answerable": n,
    }
