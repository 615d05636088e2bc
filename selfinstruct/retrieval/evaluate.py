"""Recall@k of chunk retrieval against CUAD's located gold spans, per contract.

Dagster-free. A retrieved chunk is a hit when its character range overlaps a gold span by at
least half of the shorter of the two; a question counts as recalled at k if any of its top-k
chunks is a hit. Every recall carries a 95 % interval that resamples contracts (a contract's questions share its
text), and `compare_recall` pairs two methods question by question (difference, interval, bootstrap p).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selfinstruct.core.bm25 import bm25_index, bm25_top
from selfinstruct.core.stats import bootstrap_ci, paired_bootstrap

KS = (1, 3, 5)


@dataclass(frozen=True)
class Question:
    contract_id: str
    category: str
    question: str
    spans: tuple[tuple[int, int], ...]


def eval_questions(annotations: Sequence[dict], eval_contract_ids: set[str]) -> list[Question]:
    """Answerable questions with at least one located gold span, on eval-split contracts only."""
    out = []
    for a in annotations:
        if a["contract_id"] in eval_contract_ids and not a["is_impossible"] and len(a["answer_starts"]):
            spans = tuple(zip((int(s) for s in a["answer_starts"]), (int(e) for e in a["answer_ends"])))
            out.append(Question(a["contract_id"], a["category"], a["question"], spans))
    return out


def is_hit(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    for s, e in spans:
        overlap = min(end, e) - max(start, s)
        if overlap > 0 and overlap >= 0.5 * min(end - start, e - s):
            return True
    return False


def hits_at(questions: Sequence[Question], ranked: Sequence[Sequence[tuple[int, int]]], k: int) -> list[int]:
    """1 per question with a hit among its first k ranked (start, end) chunks, else 0."""
    return [int(any(is_hit(s, e, q.spans) for s, e in r[:k])) for q, r in zip(questions, ranked)]


def recall_rows(
    method: str,
    questions: Sequence[Question],
    ranked: Sequence[Sequence[tuple[int, int]]],
    ks: Sequence[int] = KS,
    n_boot: int = 2000,
) -> list[dict]:
    """One row per k: the share of questions with a hit among their first k ranked (start, end) chunks, its 95 %
    interval (bootstrap over contracts), and the mean characters of context those k chunks hand to a generator
    (recall grows with chunk size, so methods are compared at equal context)."""
    rows = []
    n = len(questions)
    contracts = [q.contract_id for q in questions]
    for k in ks:
        hits = hits_at(questions, ranked, k)
        ci = bootstrap_ci(hits, contracts, n_boot=n_boot)
        chars = sum(sum(e - s for s, e in r[:k]) for r in ranked)
        rows.append(
            {
                "method": method,
                "k": k,
                "recall": sum(hits) / n if n else 0.0,
                "recall_low": ci.low,
                "recall_high": ci.high,
                "n": n,
                "mean_context_chars": chars / n if n else 0.0,
            }
        )
    return rows


def compare_recall(
    questions: Sequence[Question],
    ranked: dict[str, Sequence[Sequence[tuple[int, int]]]],
    method: str,
    against: Sequence[str],
    k: int = 3,
    n_boot: int = 2000,
) -> list[dict]:
    """`method` minus each of `against` in recall@k on the same questions: difference, 95 % interval and two-sided
    p (paired bootstrap over contracts). Methods missing from `ranked` are left out."""
    contracts = [q.contract_id for q in questions]
    mine = hits_at(questions, ranked[method], k)
    out = []
    for other in against:
        if other == method or other not in ranked:
            continue
        t = paired_bootstrap(mine, hits_at(questions, ranked[other], k), contracts, n_boot=n_boot)
        out.append(
            {
                "method": method,
                "versus": other,
                "k": k,
                "diff": t["diff"],
                "low": t["low"],
                "high": t["high"],
                "p_value": t["p_value"],
                "n": t["n"],
                "contracts": t["n_clusters"],
            }
        )
    return out


def _by_contract(chunks: Sequence[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for c in chunks:
        grouped[c["contract_id"]].append(c)
    return grouped


def rank_dense(
    questions: Sequence[Question], chunks: Sequence[dict], embed: Callable[[list[str]], np.ndarray], k: int
) -> list[list[tuple[int, int]]]:
    """Brute-force cosine ranking within each question's contract (vectors are unit-normalised)."""
    grouped = _by_contract(chunks)
    needed = [c for cid in {q.contract_id for q in questions} for c in grouped.get(cid, [])]
    vecs = dict(zip((c["chunk_id"] for c in needed), embed([c["text"] for c in needed]))) if needed else {}
    qtexts = sorted({q.question for q in questions})
    qvecs = dict(zip(qtexts, embed(qtexts))) if qtexts else {}
    ranked: list[list[tuple[int, int]]] = []
    for q in questions:
        cands = grouped.get(q.contract_id, [])
        if not cands:
            ranked.append([])
            continue
        scores = np.stack([vecs[c["chunk_id"]] for c in cands]) @ qvecs[q.question]
        order = np.argsort(-scores, kind="stable")[:k]
        ranked.append([(cands[i]["start"], cands[i]["end"]) for i in order])
    return ranked


def rank_bm25(questions: Sequence[Question], chunks: Sequence[dict], k: int) -> list[list[tuple[int, int]]]:
    """BM25 (`core.bm25`: bm25s, English stop words) over each contract's chunks."""
    grouped = _by_contract(chunks)
    retrievers: dict[str, Any] = {}
    ranked: list[list[tuple[int, int]]] = []
    for q in questions:
        cands = grouped.get(q.contract_id, [])
        if not cands:
            ranked.append([])
            continue
        if q.contract_id not in retrievers:
            retrievers[q.contract_id] = bm25_index([c["text"] for c in cands])
        top = bm25_top(retrievers[q.contract_id], q.question, min(k, len(cands)))
        ranked.append([(cands[i]["start"], cands[i]["end"]) for i in top])
    return ranked
