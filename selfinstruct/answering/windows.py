"""The windows a question is answered from: BM25's best candidate windows of the retrieved chunks, shown as the
prompt's excerpts and scored as the replies, and the same windows (gold included) for training rows.

    windows = top_windows(question, chunks, n_windows=6)           # what the answerer compares
    messages = window_messages(question, windows, chunks)           # excerpts = the windows' text, once
    shown, target, retrieved = training_windows(question, golds, chunks, 6)  # gold + the hardest wrong ones

Dagster-free. A prompt of whole chunks (~800 tokens for three) teaches a ~60-token quote at ~13x its cost; a
prompt of the windows the scorer compares costs a fraction and shows the model exactly the choice it makes.
The prompt shows the windows' text in passage order (`window_excerpts`), never in BM25's rank, in the benchmark
and in training rows alike, so a model cannot learn that the gold sits at a fixed place.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfinstruct.answering.answer import Span
from selfinstruct.answering.baseline import bm25_scores
from selfinstruct.answering.candidates import Passage, candidate_spans
from selfinstruct.answering.prompt import quote_messages
from selfinstruct.core.metrics import cuad_match, jaccard

# Windows a question is answered from. 6 of the BM25-ranked windows of 3 chunks: the benchmark and the training
# rows use the same number, so a model is trained on the choice it is scored on.
N_WINDOWS = 6


def _ranked(question: str, spans: Sequence[Span]) -> list[int]:
    """Indices of `spans` by BM25 score for `question`, best first (ties: earlier)."""
    scores = bm25_scores(question, spans)  # all 0.0 for a question of stop words only: then passage order decides
    return sorted(range(len(spans)), key=lambda i: (-scores[i], i))


def top_windows(question: str, passages: Sequence[Passage], n_windows: int) -> list[Span]:
    """The candidate windows BM25 ranks in the top `n_windows` (ties: earlier), in their original order.

    The original order, not the rank, so the scorer's batches do not depend on BM25's float ties. 0 keeps all.
    """
    spans = candidate_spans(passages)
    if n_windows <= 0 or len(spans) <= n_windows:
        return spans
    return [spans[i] for i in sorted(_ranked(question, spans)[:n_windows])]


def window_excerpts(windows: Sequence[Span], passages: Sequence[Passage]) -> list[str]:
    """The text the windows cover, each character once: overlapping or touching windows of one passage become one
    excerpt, in passage order; a window found in no passage (a gold clause added to a training row) stands alone,
    last. Windows of 1-3 sentences overlap heavily, so shown one by one they would repeat most of their text."""
    texts = [p if isinstance(p, str) else p["text"] for p in passages]
    spans: dict[int, list[list[int]]] = {}
    alone = []
    for w in windows:
        at = next(((i, t.find(w.text)) for i, t in enumerate(texts) if w.text and t.find(w.text) >= 0), None)
        if at is None:
            alone.append(w.text)
        else:
            spans.setdefault(at[0], []).append([at[1], at[1] + len(w.text)])
    out = []
    for i in sorted(spans):
        merged: list[list[int]] = []
        for a, b in sorted(spans[i]):
            if merged and a <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out += [texts[i][a:b] for a, b in merged]
    return out + alone


def window_messages(question: str, windows: Sequence[Span], passages: Sequence[Passage] = ()) -> list[dict]:
    """The quoting prompt whose excerpts are the text of the candidate windows (`window_excerpts`), nothing else."""
    return quote_messages(question, window_excerpts(windows, passages))


def best_gold_window(spans: Sequence[Span], golds: Sequence[str]) -> int | None:
    """Index of the span that matches a gold clause best (CUAD match, then word Jaccard); None if none matches."""
    golds = [g for g in golds if g]
    right = [i for i, s in enumerate(spans) if golds and cuad_match(s.text, golds)]
    return max(right, key=lambda i: (max(jaccard(spans[i].text, g) for g in golds), -i)) if right else None


def training_windows(
    question: str, golds: Sequence[str], passages: Sequence[Passage], n_windows: int
) -> tuple[list[Span], Span | None, bool]:
    """(windows shown, target window, whether a retrieved window held it) for one training row; target None
    means the answer is "No such clause."

    With golds: the candidate window that matches a gold clause best, or, when retrieval missed it, the first
    gold clause itself (a verbatim slice, so the model always learns to copy what it reads); beside it the
    `n_windows - 1` wrong windows BM25 ranks highest (the hardest distractors). Without golds: the same windows
    the benchmark would show (`top_windows`).
    """
    golds = [g for g in golds if g]
    if not golds:
        return top_windows(question, passages, n_windows), None, False
    spans = candidate_spans(passages)
    found = best_gold_window(spans, golds)
    target = spans[found] if found is not None else Span(golds[0])
    wrong = [i for i in _ranked(question, spans) if not cuad_match(spans[i].text, golds)]
    keep = sorted(wrong[: max(0, n_windows - 1)] + ([found] if found is not None else []))
    shown = [spans[i] for i in keep]
    if found is None:
        shown.append(target)  # no contract offset to place it by: after the retrieved windows
    return shown, target, found is not None


def hardest_wrong(question: str, golds: Sequence[str], windows: Sequence[Span]) -> Span | None:
    """The window BM25 ranks highest among those that are not a right answer (the rejected side of a pair)."""
    golds = [g for g in golds if g]
    for i in _ranked(question, windows):
        if not (golds and cuad_match(windows[i].text, golds)):
            return windows[i]
    return None
