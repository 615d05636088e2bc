"""BM25 over a few texts with one tokenisation: bm25s, English stop words, no stemming.

    index = bm25_index(chunk_texts)
    order = bm25_top(index, "Which law governs?", k=3)     # positions in chunk_texts, best first
    scores = bm25_scores(index, "Which law governs?")      # one score per text, in their order

Dagster-free. Every BM25 ranking in the project (the retrieval baselines, hybrid retrieval, hard negatives for
the retriever's training pairs, the no-LLM answer) indexes and queries through these, so their tokens agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _tokenize(texts: Sequence[str], return_ids: bool = True) -> Any:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", return_ids=return_ids, show_progress=False)


def bm25_index(texts: Sequence[str]) -> Any:
    """A `bm25s.BM25` index of `texts` (IDF over these texts only)."""
    import bm25s

    index = bm25s.BM25()
    index.index(_tokenize(texts), show_progress=False)
    return index


def bm25_top(index: Any, query: str, k: int) -> list[int]:
    """Positions of the `k` best texts of `index` for `query`, best first (k at most the number of texts)."""
    ids, _ = index.retrieve(_tokenize([query]), k=k, show_progress=False)
    return [int(i) for i in ids[0]]


def bm25_scores(index: Any, query: str) -> list[float]:
    """The BM25 score of every text of `index` for `query`, in the order they were indexed; all 0.0 for a query
    of stop words only (bm25s fails on an empty query: then nothing is matched, so every text scores 0)."""
    tokens = _tokenize([query], return_ids=False)[0]
    if not tokens:
        return [0.0] * len(index.get_scores(["_"]))
    return [float(x) for x in index.get_scores(tokens)]
