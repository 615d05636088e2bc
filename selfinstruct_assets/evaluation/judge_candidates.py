"""Training rows for the answer judge, made without any LM: quotations of the kind the benchmark's methods give.

    rows = build_judge_examples(train_annotations, contracts, per_question=6, eval_contract_ids=eval_ids)
    # each row: contract_id, question, golds, candidate, label (CUAD match of candidate against golds)

Dagster-free. A candidate is a window of 1-3 sentences cut by the answering module's own splitter
(`answering.candidate_spans`, the windows every benchmark method quotes from), taken from the contract near a gold
clause and far from it. Per question: up to half CUAD matches; the rest near misses (windows that share words with
a gold clause but stay under CUAD's 0.5 Jaccard: the quotations a model most often gets wrong) and unrelated
windows. "No such clause." rows are not made: `trained_judge.judge_rows` grades them exactly, without the model.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence

from selfinstruct_core.metrics import cuad_match, jaccard

from ..answering import candidate_spans, split_sentences

NEAR_MISS_JACCARD = 0.1  # a non-matching window sharing at least this word Jaccard with a gold clause is a near miss


def _windows(contract_text: str, regions: Sequence[tuple[int, int]]) -> list[str]:
    """Distinct 1-3 sentence windows of each region, as `candidate_spans` cuts a retrieved chunk, without the
    region's first and last sentence where the region cuts the contract (they are fragments)."""
    seen: dict[tuple[int, int], str] = {}
    for a, b in regions:
        sents = split_sentences(contract_text[a:b], offset=a)
        if not sents:
            continue
        lo = sents[0].end if a > 0 else a  # a window must start after a cut first sentence ...
        hi = sents[-1].start if b < len(contract_text) else b  # ... and end before a cut last one
        for s in candidate_spans([{"text": contract_text[a:b], "start": a}]):
            if s.start >= lo and s.end <= hi:
                seen.setdefault((s.start, s.end), s.text)
    return [seen[k] for k in sorted(seen)]


def answer_candidates(annotation: dict, contract_text: str, per_question: int = 6, window: int = 400,
                      seed: int = 0, max_spans: int = 2) -> list[dict]:
    """Candidate answers for one answerable annotation: windows near a gold span and far from it, labelled.

    At most `per_question` rows: up to half CUAD matches, then near misses and unrelated windows in equal shares
    where there are enough. Only the first `max_spans` gold spans get a region: labelling is the cost here.
    """
    golds = list(annotation.get("answer_texts") or [])
    starts = [int(s) for s in annotation.get("answer_starts") or []]
    ends = [int(e) for e in annotation.get("answer_ends") or []]
    if annotation.get("is_impossible") or not golds or not starts:
        return []
    rng = random.Random(f"{seed}:{annotation['contract_id']}:{annotation['question']}")
    n = len(contract_text)
    regions = [(max(0, s - window), min(n, e + window)) for s, e in list(zip(starts, ends))[:max_spans]]
    far = rng.randrange(0, max(1, n - 2 * window))
    regions.append((far, min(n, far + 2 * window)))
    pos, near, other = [], [], []
    for cand in _windows(contract_text, regions):
        if not 3 <= len(cand.split()) <= 300:
            continue
        row = {"contract_id": annotation["contract_id"], "question": annotation["question"], "golds": golds,
               "candidate": cand, "label": int(cuad_match(cand, golds))}
        if row["label"]:
            pos.append(row)
        elif max(jaccard(cand, g) for g in golds) >= NEAR_MISS_JACCARD:
            near.append(row)
        else:
            other.append(row)
    k_pos = min(len(pos), per_question // 2)
    k_near = min(len(near), (per_question - k_pos + 1) // 2)
    k_other = min(len(other), per_question - k_pos - k_near)
    k_near = min(len(near), per_question - k_pos - k_other)  # too few unrelated windows: more near misses
    return rng.sample(pos, k_pos) + rng.sample(near, k_near) + rng.sample(other, k_other)


def build_judge_examples(annotations: Sequence[dict], contracts: Sequence[dict], per_question: int = 6,
                         seed: int = 0, eval_contract_ids: Collection[str] | None = None) -> list[dict]:
    """`answer_candidates` for every answerable annotation; with `eval_contract_ids`, refuses those contracts."""
    if eval_contract_ids is not None:
        leaked = sorted({a["contract_id"] for a in annotations} & set(eval_contract_ids))
        if leaked:
            raise ValueError(f"judge training rows from {len(leaked)} eval-split contract(s): {', '.join(leaked[:5])}; "
                             "held-out contracts are never trained on")
    texts = {c["contract_id"]: c["text"] for c in contracts}
    out = []
    for a in annotations:
        if a["contract_id"] in texts:
            out.extend(answer_candidates(a, texts[a["contract_id"]], per_question, seed=seed))
    return out
