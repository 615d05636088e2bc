"""The no-LLM reference: the candidate span that BM25 ranks best for the question.

    answer = bm25_answer("Which law governs the contract?", top_chunks)  # top_chunks: BM25 top-3 chunk rows

Dagster-free. The spans are indexed on their own (IDF over this question's candidates, not the corpus),
with the one BM25 set-up of the project (`core.bm25`), the chunk retriever's.
It cannot judge absence: it says "no clause" only when no question word occurs in any candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfinstruct.answering.answer import Answer, Span
from selfinstruct.answering.candidates import Passage, candidate_spans
from selfinstruct.core import bm25 as core_bm25


def bm25_scores(question: str, spans: Sequence[Span]) -> list[float]:
    """BM25 score of each span for `question`, the spans indexed on their own (`core.bm25`)."""
    if not spans:
        return []
    return core_bm25.bm25_scores(core_bm25.bm25_index([s.text for s in spans]), question)


def bm25_answer(
    question: str,
    passages: Sequence[Passage],
    max_sentences: int = 1,
    spans: Sequence[Span] | None = None,
    min_score: float = 0.0,
) -> Answer:
    """Best span by BM25 (1-sentence candidates by default, the measured reference row); ties: earliest."""
    spans = list(spans) if spans is not None else candidate_spans(passages, max_sentences=max_sentences)
    scores = bm25_scores(question, spans)
    if not scores or max(scores) <= min_score:
        return Answer.none(max(scores, default=0.0), method="bm25", n_candidates=len(spans))
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    return Answer.of(spans[best], scores[best], method="bm25", n_candidates=len(spans))
