"""Training pairs for the retriever: train-split (question, gold-clause chunk) rows, balanced across questions.

Dagster-free. `build_pairs` turns CUAD annotations and chunks into (question, positive[, negative]) rows;
`balance` caps them round-robin across question texts. The trainer that fine-tunes the packaged
all-MiniLM-L6-v2 on them is `training.retriever`.

CUAD asks the same 41 questions of every contract, so a plain batch would hold one question several times
and treat another contract's answer to it as a negative. The trainer's no-duplicates batch sampler keeps every
text (question, positive or negative) at most once per batch; pairs are balanced across questions first so the
sampler's batches stay full.

    .venv/bin/python -m pytest -q tests/test_retriever_training.py
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Collection, Sequence

from selfinstruct.core.held_out import refuse_eval_contracts
from selfinstruct.retrieval.evaluate import is_hit


def build_pairs(
    annotations: Sequence[dict],
    chunks: Sequence[dict],
    eval_contract_ids: Collection[str],
    hard_negatives: bool = False,
) -> list[dict]:
    """Rows {question, positive, contract_id, chunk_id[, negative]}: one per (annotation, gold chunk).

    A chunk is gold when it overlaps a located gold span by at least half of the shorter of the two (the
    hit rule of `retrieval.evaluate`). With `hard_negatives`, each row also gets the chunk of the same
    contract that BM25 ranks highest for the question among those touching no gold span of it.
    Raises `EvalSplitLeak` when an annotation belongs to an eval-split contract.
    """
    refuse_eval_contracts({a["contract_id"] for a in annotations}, eval_contract_ids, "annotations")
    by_contract: dict[str, list[dict]] = defaultdict(list)
    for c in chunks:
        by_contract[c["contract_id"]].append(c)
    bm25: dict[str, object] = {}
    rows = []
    for a in annotations:
        if a.get("is_impossible") or not len(a.get("answer_starts") or []):
            continue
        spans = [(int(s), int(e)) for s, e in zip(a["answer_starts"], a["answer_ends"])]
        cands = by_contract.get(a["contract_id"], [])
        gold = [c for c in cands if is_hit(c["start"], c["end"], spans)]
        if not gold:
            continue
        negative = None
        if hard_negatives:
            negative = _hard_negative(a["question"], cands, spans, bm25, a["contract_id"])
        for c in gold:
            row = {
                "question": a["question"],
                "positive": c["text"],
                "contract_id": a["contract_id"],
                "chunk_id": c["chunk_id"],
            }
            if hard_negatives:
                if negative is None:
                    continue  # every chunk of the contract touches the answer: no negative to pair with
                row["negative"] = negative
            rows.append(row)
    return rows


def _hard_negative(question: str, cands: list[dict], spans: list[tuple[int, int]], cache: dict, cid: str) -> str | None:
    from selfinstruct.core.bm25 import bm25_index
    from selfinstruct.retrieval.hybrid import bm25_ranking

    ids = [c["chunk_id"] for c in cands]
    if cid not in cache:
        cache[cid] = bm25_index([c["text"] for c in cands])
    by_id = {c["chunk_id"]: c for c in cands}
    for chunk_id in bm25_ranking(question, ids, [], cache[cid]):
        c = by_id[chunk_id]
        # Not merely "not a hit": a chunk holding any part of the answer is no negative.
        if all(min(c["end"], e) <= max(c["start"], s) for s, e in spans):
            return c["text"]
    return None


def explain_no_pairs(annotations: Sequence[dict], chunks: Sequence[dict]) -> str:
    answerable = [a for a in annotations if not a.get("is_impossible")]
    located = [a for a in answerable if len(a.get("answer_starts") or [])]
    chunked = {c["contract_id"] for c in chunks}
    with_chunks = [a for a in located if a["contract_id"] in chunked]
    return (
        f"no (question, gold chunk) pairs: {len(annotations)} annotations, {len(answerable)} answerable, "
        f"{len(located)} with a located gold span, {len(with_chunks)} of those on a contract that has chunks "
        f"({len(chunked)} contracts chunked), and no chunk overlaps a gold span by half"
    )


def balance(pairs: Sequence[dict], max_pairs: int | None, seed: int = 0) -> list[dict]:
    """At most `max_pairs` pairs, taken round-robin across question texts (shuffled within each)."""
    rng = random.Random(seed)
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in pairs:
        groups[p["question"]].append(p)
    queues = [rng.sample(g, len(g)) for _, g in sorted(groups.items())]
    out: list[dict] = []
    limit = len(pairs) if max_pairs is None else min(max_pairs, len(pairs))
    depth = 0
    while len(out) < limit:
        for q in queues:
            if depth < len(q) and len(out) < limit:
                out.append(q[depth])
        depth += 1
    return out
