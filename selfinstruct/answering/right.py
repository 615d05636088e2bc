"""Is this answer right? The one rule the judge's labels, training rows, the benchmark and the gate all use.

    is_right("This Agreement is governed by the laws of Delaware.", golds)  # CUAD match against the golds
    is_right("No such clause.", [])                                         # 1.0: there is none

Dagster-free. In the one answer format an answer is a quotation or "no such clause" ("", or a reply that says
so): with gold clauses it is right when it quotes one of them (CUAD's word-Jaccard match); without, only
"no such clause" is right.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfinstruct.answering.snapping import is_no_clause
from selfinstruct.core.metrics import cuad_match


def is_right(answer: str | None, golds: Sequence[str] | None) -> float:
    """1.0 when right in the one format (see the module docstring), else 0.0."""
    golds = [g for g in (golds or []) if g]
    if not golds:
        return float(is_no_clause(answer))
    return 0.0 if is_no_clause(answer) else cuad_match(answer, golds)
