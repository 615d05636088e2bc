"""Training rows for the answer judge, made without any LM: windows of contract sentences near a gold clause and
away from it, labelled by CUAD match (a proxy for model answers, not a sample of them).

    rows = build_judge_examples(train_annotations, contracts, per_question=6, eval_contract_ids=eval_ids)
    # each row: contract_id, question, golds, candidate, label (CUAD match of candidate against golds)

Dagster-free. Sentences here end at any '.', ';' or ':' followed by space, so windows are often shorter than the
answering module's (`answering.candidate_spans`). Cutting them with that splitter instead, with or without a quota
of near misses, was measured and judged real benchmark answers worse (benchmarks/RESULTS.md, "The answer judge ...").
"No such clause." rows are not made: `trained_judge.judge_rows` grades them exactly, without the model.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Sequence

from selfinstruct.core.held_out import refuse_eval_contracts
from selfinstruct.core.metrics import cuad_match

_SENTENCE_END = re.compile(r"(?<=[.;:])\s+|\n\s*\n")


def _sentences(text: str, offset: int) -> list[tuple[int, int]]:
    out, pos = [], 0
    for m in [*_SENTENCE_END.finditer(text), None]:
        end = m.start() if m else len(text)
        if text[pos:end].strip():
            out.append((offset + pos, offset + end))
        pos = m.end() if m else len(text)
    return out


def answer_candidates(
    annotation: dict, contract_text: str, per_question: int = 6, window: int = 400, seed: int = 0, max_spans: int = 2
) -> list[dict]:
    """Candidate answers for one answerable annotation: 1-3 sentence windows near a gold span and far from it.

    Each row: contract_id, question, golds (answer_texts), candidate, label (`cuad_match` against the golds).
    At most `per_question` rows, half positive where possible. A proxy for model answers, not a sample of them.
    Only the first `max_spans` gold spans get a region: labelling every window is the cost here.
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
    spans: set[tuple[int, int]] = set()
    for a, b in regions:
        sents = _sentences(contract_text[a:b], a)
        for i in range(len(sents)):
            for w in (1, 2, 3):
                if i + w <= len(sents):
                    spans.add((sents[i][0], sents[i + w - 1][1]))
    rows = []
    for s, e in sorted(spans):
        cand = contract_text[s:e].strip()
        if 3 <= len(cand.split()) <= 300:
            rows.append(
                {
                    "contract_id": annotation["contract_id"],
                    "question": annotation["question"],
                    "golds": golds,
                    "candidate": cand,
                    "label": int(cuad_match(cand, golds)),
                }
            )
    pos = [r for r in rows if r["label"]]
    neg = [r for r in rows if not r["label"]]
    k_pos = min(len(pos), per_question // 2)
    return rng.sample(pos, k_pos) + rng.sample(neg, min(len(neg), per_question - k_pos))


def build_judge_examples(
    annotations: Sequence[dict],
    contracts: Sequence[dict],
    per_question: int = 6,
    seed: int = 0,
    eval_contract_ids: Collection[str] | None = None,
) -> list[dict]:
    """`answer_candidates` for every answerable annotation; with `eval_contract_ids`, refuses those contracts
    (`EvalSplitLeak`, a ValueError)."""
    if eval_contract_ids is not None:
        refuse_eval_contracts({a["contract_id"] for a in annotations}, eval_contract_ids, "judge training rows")
    texts = {c["contract_id"]: c["text"] for c in contracts}
    out = []
    for a in annotations:
        if a["contract_id"] in texts:
            out.extend(answer_candidates(a, texts[a["contract_id"]], per_question, seed=seed))
    return out
