"""Hybrid retrieval: reciprocal-rank fusion (RRF) of BM25 and dense rankings within one contract.

Dagster-free. `rrf_fuse` fuses any rankings of ids; `HybridRetriever` ranks one contract's chunks with
BM25 (bm25s) and dense cosine, and fuses them. It is the one hybrid retriever: `retrieval_eval` measures it
(`rank_hybrid`) and answering is served by it (`selfinstruct.retrieval.retriever.make_retriever`, which reads
each contract's chunks and their stored vectors from the index). Scores follow Cormack et al. (2009):

    score(d) = sum_i  w_i / (k + rank_i(d))        rank_i is 1-based; a list that lacks d adds nothing

Ties break by the best rank the document has in any list, then by where it first appears (list order,
then position), so a fused ranking is deterministic.

    .venv/bin/python -m pytest -q tests/test_hybrid_retrieval.py
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from selfinstruct.core.bm25 import bm25_index, bm25_top

RRF_K = 60

# contract_id -> (its chunk rows, their unit vectors or None to embed the texts): a contract read on first use.
ChunkSource = Callable[[str], tuple[Sequence[dict], np.ndarray | None]]


def rrf_fuse(
    rankings: Sequence[Sequence[str]], k: int = RRF_K, weights: Sequence[float] | None = None, top_k: int | None = None
) -> list[tuple[str, float]]:
    """(id, fused score) best first, from rankings given best first; `weights` default to 1 each."""
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    scores: dict[str, float] = defaultdict(float)
    best_rank: dict[str, int] = {}
    first_seen: dict[str, tuple[int, int]] = {}
    for li, (ranking, w) in enumerate(zip(rankings, weights)):
        # A list that repeats an id counts it once, at its first place; ranks count distinct ids.
        for pos, doc in enumerate(dict.fromkeys(ranking)):
            rank = pos + 1
            scores[doc] += w / (k + rank)
            best_rank[doc] = min(best_rank.get(doc, rank), rank)
            first_seen.setdefault(doc, (li, pos))
    order = sorted(scores, key=lambda d: (-scores[d], best_rank[d], first_seen[d]))
    return [(d, scores[d]) for d in order[:top_k]]


def bm25_ranking(question: str, chunk_ids: Sequence[str], texts: Sequence[str], retriever: Any = None) -> list[str]:
    """Every chunk id best first by BM25 (`core.bm25`); pass `retriever` to reuse a `bm25_index` of `texts`."""
    if not chunk_ids:
        return []
    return [chunk_ids[i] for i in bm25_top(retriever or bm25_index(texts), question, len(chunk_ids))]


def dense_ranking(query_vec: np.ndarray, chunk_ids: Sequence[str], vectors: np.ndarray) -> list[str]:
    """Every chunk id best first by dot product (unit vectors: cosine); stable on ties."""
    if not len(chunk_ids):
        return []
    order = np.argsort(-(vectors @ query_vec), kind="stable")
    return [chunk_ids[i] for i in order]


class HybridRetriever:
    """RRF of BM25 and dense rankings over the chunks of the question's contract only.

    `chunks` are rows with chunk_id, contract_id, start, end, text; `embed` maps texts to unit vectors.
    Each contract's BM25 index and chunk vectors are built on first use and kept. `weights` are
    (bm25, dense); a weight of 0 drops that ranking, so the same object also serves either alone.
    With `fetch` (a `ChunkSource`), a contract's rows (chunk_id and text suffice) are read on its first
    question instead of being given up front, with their vectors when the source stores them.
    """

    def __init__(
        self,
        chunks: Sequence[dict],
        embed: Callable[[list[str]], np.ndarray],
        k: int = RRF_K,
        weights: tuple[float, float] = (1.0, 1.0),
        fetch: ChunkSource | None = None,
    ):
        self.embed, self.k, self.weights, self.fetch = embed, k, weights, fetch
        self.by_contract: dict[str, list[dict]] = defaultdict(list)
        for c in chunks:
            self.by_contract[c["contract_id"]].append(c)
        self._bm25: dict[str, Any] = {}
        self._vecs: dict[str, np.ndarray] = {}

    def chunks(self, contract_id: str) -> list[dict]:
        """The contract's chunk rows, in ranking order; read from `fetch` once when there is one."""
        if self.fetch is not None and contract_id not in self.by_contract:
            rows, vecs = self.fetch(contract_id)
            self.by_contract[contract_id] = list(rows)
            if vecs is not None and len(rows):
                self._vecs[contract_id] = vecs
        return self.by_contract.get(contract_id, [])

    def prepare(self, contract_ids: Sequence[str]) -> None:
        """Embed the chunks of many contracts in one call (faster than one contract at a time)."""
        # chunks() first: a fetched contract may come with its stored vectors.
        todo = [cid for cid in dict.fromkeys(contract_ids) if self.chunks(cid) and cid not in self._vecs]
        if not todo or not self.weights[1]:
            return
        vecs = self.embed([c["text"] for cid in todo for c in self.by_contract[cid]])
        at = 0
        for cid in todo:
            n = len(self.by_contract[cid])
            self._vecs[cid], at = vecs[at : at + n], at + n

    def rankings(
        self, question: str, contract_id: str, query_vec: np.ndarray | None = None
    ) -> tuple[list[str], list[str]]:
        """(bm25 ids, dense ids), each over all of the contract's chunks, best first."""
        cands = self.chunks(contract_id)
        ids = [c["chunk_id"] for c in cands]
        if not cands:
            return [], []
        bm25 = []
        if self.weights[0]:
            if contract_id not in self._bm25:
                self._bm25[contract_id] = bm25_index([c["text"] for c in cands])
            bm25 = bm25_ranking(question, ids, [], self._bm25[contract_id])
        dense = []
        if self.weights[1]:
            self.prepare([contract_id])
            qv = np.asarray(self.embed([question])[0]) if query_vec is None else query_vec
            dense = dense_ranking(qv, ids, self._vecs[contract_id])
        return bm25, dense

    def search(
        self, question: str, contract_id: str, top_k: int = 5, query_vec: np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        """Fused (chunk_id, score) best first, among `contract_id`'s chunks only."""
        bm25, dense = self.rankings(question, contract_id, query_vec)
        return rrf_fuse([bm25, dense], k=self.k, weights=self.weights, top_k=top_k)

    def search_many(
        self, questions: Sequence[str], contract_ids: Sequence[str], top_k: int = 5
    ) -> list[list[tuple[str, float]]]:
        """`search` for many questions, embedding chunks and distinct questions in batches."""
        self.prepare(contract_ids)
        qvecs: dict[str, np.ndarray] = {}
        if self.weights[1]:
            distinct = list(dict.fromkeys(questions))
            qvecs = dict(zip(distinct, self.embed(distinct))) if distinct else {}
        return [self.search(q, cid, top_k, qvecs.get(q)) for q, cid in zip(questions, contract_ids)]

    def spans(self, hits: Sequence[tuple[str, float]], contract_id: str) -> list[tuple[int, int]]:
        """(start, end) of each hit, for `retrieval.evaluate.recall_rows`."""
        rows = {c["chunk_id"]: c for c in self.by_contract.get(contract_id, [])}
        return [(rows[h]["start"], rows[h]["end"]) for h, _ in hits]


def rank_hybrid(
    questions: Sequence,
    chunks: Sequence[dict],
    embed: Callable[[list[str]], np.ndarray],
    k: int,
    rrf_k: int = RRF_K,
    weights: tuple[float, float] = (1.0, 1.0),
) -> list[list[tuple[int, int]]]:
    """Top-k (start, end) per `retrieval.evaluate.Question`, shaped like `rank_dense` / `rank_bm25`."""
    retriever = HybridRetriever(chunks, embed, rrf_k, weights)
    hits = retriever.search_many([q.question for q in questions], [q.contract_id for q in questions], k)
    return [retriever.spans(h, q.contract_id) for h, q in zip(hits, questions)]
