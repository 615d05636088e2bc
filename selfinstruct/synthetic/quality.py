"""What self-instruct produced, in numbers a reader can judge: kept, rejected by reason, duplicates, located clauses.

    report = quality_report(candidates, kept, rejected, contracts, annotations)

Dagster-free. A reason's numbers ("cosine 0.95") are dropped so rejects group by kind. An answer is
`located` when it is a verbatim span of its contract (the SFT target can only be such a span), and a
`cuad_clause` when it also overlaps a clause CUAD annotates in that contract (so it answers a question
CUAD asks, not merely quotes the contract).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from selfinstruct.corpus.spans import verbatim_span

_NUMBERS = re.compile(r"\s*\([^)]*\)|\s*\d[\d.\-]*")


def reason_kind(reason: str) -> str:
    return _NUMBERS.sub("", reason).strip() or reason


def quality_report(
    candidates: Sequence[dict],
    kept: Sequence[dict],
    rejected: Sequence[dict],
    contracts: dict[str, dict],
    annotations: Sequence[dict] = (),
) -> dict:
    """kept, rejected, rejected_by_reason, duplicate_rate (near-duplicate rejects per candidate), located_share,
    cuad_clause_share (shares of kept rows), contracts and distinct questions covered."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for a in annotations:
        for s, e in zip(a.get("answer_starts") or [], a.get("answer_ends") or []):
            spans.setdefault(a["contract_id"], []).append((int(s), int(e)))
    located = clause = 0
    for k in kept:
        text = contracts.get(k["contract_id"], {}).get("text", "")
        quote = verbatim_span(k["answer"], text)
        if quote is None:
            continue
        located += 1
        at = text.find(quote)
        if any(min(at + len(quote), e) - max(at, s) > 0 for s, e in spans.get(k["contract_id"], [])):
            clause += 1
    by_reason = Counter(reason_kind(r["reason"]) for r in rejected)
    n = len(candidates)
    return {
        "generated": n,
        "kept": len(kept),
        "rejected": len(rejected),
        "rejected_by_reason": dict(by_reason),
        "duplicate_rate": by_reason.get("near-duplicate question", 0) / n if n else 0.0,
        "located_share": located / len(kept) if kept else 0.0,
        "cuad_clause_share": clause / len(kept) if kept else 0.0,
        "contracts": len({k["contract_id"] for k in kept}),
        "distinct_questions": len({k["question"].strip().lower() for k in kept}),
    }
