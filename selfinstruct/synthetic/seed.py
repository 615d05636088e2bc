"""The human-labelled seed set: short extractive QA drawn from CUAD annotations of train contracts."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

MAX_ANSWER_CHARS = 300


def _window(text: str, start: int, end: int, size: int) -> tuple[int, int]:
    """A `size`-char window of the contract centred on the span, cut at whitespace."""
    pad = max(0, (size - (end - start)) // 2)
    lo, hi = max(0, start - pad), min(len(text), end + pad)
    lo = text.rfind(" ", 0, lo) + 1 if lo > 0 else 0
    nxt = text.find(" ", hi)
    return lo, (nxt if nxt != -1 else len(text))


def seed_examples(
    annotations: Sequence[dict], contracts: dict[str, dict], size: int = 32, context_chars: int = 1000, seed: int = 0
) -> list[dict]:
    """Up to `size` (question, answer, context) rows from train-split contracts, spread over categories.

    The answer is the shortest located gold clause piece (at most 300 chars); the context is the
    contract text around it. Eval-split contracts are never used.
    """
    by_cat: dict[str, list[dict]] = defaultdict(list)
    for a in annotations:
        c = contracts.get(a["contract_id"])
        if c is None or c["split"] != "train" or a["is_impossible"] or not len(a["answer_starts"]):
            continue
        spans = sorted(zip(a["answer_starts"], a["answer_ends"]), key=lambda s: s[1] - s[0])
        start, end = spans[0]
        if end - start > MAX_ANSWER_CHARS:
            continue
        lo, hi = _window(c["text"], start, end, context_chars)
        key = hashlib.sha256(f"{seed}:{a['contract_id']}:{a['category']}".encode()).hexdigest()
        by_cat[a["category"]].append(
            {
                "seed_id": key[:16],
                "contract_id": a["contract_id"],
                "category": a["category"],
                "question": a["question"],
                "answer": c["text"][start:end].strip(),
                "context": c["text"][lo:hi],
                "context_start": lo,
                "_order": key,
            }
        )
    for rows in by_cat.values():
        rows.sort(key=lambda r: r["_order"])
    out: list[dict] = []
    cats = sorted(by_cat)
    i = 0
    while len(out) < size and any(len(by_cat[c]) > i for c in cats):  # round-robin across categories
        out.extend(by_cat[c][i] for c in cats if len(by_cat[c]) > i)
        i += 1
    return [{k: v for k, v in r.items() if k != "_order"} for r in out[:size]]
