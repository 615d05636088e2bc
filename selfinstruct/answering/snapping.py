"""Snap a free-text reply (remote backends: text only, no log-probs) to the candidate span it quotes.

    answer = snap(reply_text, candidate_spans(top_chunks))  # Answer.none(...) for "No such clause."

Dagster-free. Token F1 (SQuAD-normalised words, the project's metric code) rather than Jaccard: F1 weighs
precision and recall alike, so a reply quoting half a sentence snaps to that sentence, not to a 3-sentence
window that merely contains it. A reply that overlaps no candidate enough is treated as "no clause" too:
an answer must be a span of the contract, and an invented one is not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from selfinstruct.answering.answer import Answer, Span
from selfinstruct.core.metrics import normalize_answer, token_f1

# Replies that deny the clause, as models phrase it (checked at the start of the reply, or as the whole reply).
_NO_CLAUSE = re.compile(
    r"^\W*(no such clause|no (such |relevant |matching )?(clause|provision|answer)|not stated|not (found|mentioned|"
    r"specified|addressed|provided|applicable)|none|n/?a|nothing|unanswerable|there is no|the (contract|excerpts?|"
    r"agreement) (does|do) not|(it|this) (does|is) not)\b",
    re.I,
)


def is_no_clause(reply: str | None) -> bool:
    """True for an empty reply or one that opens by saying there is no such clause."""
    return not normalize_answer(reply) or bool(_NO_CLAUSE.match(reply or ""))


def snap(reply: str | None, spans: Sequence[Span], min_f1: float = 0.2) -> Answer:
    """The span with the best token F1 against `reply` (ties: the shorter span), or no clause."""
    if is_no_clause(reply):
        return Answer.none(1.0, method="snap", reason="reply says no clause", reply=reply or "")
    scored = [(token_f1(s.text, reply), -len(s.text), i) for i, s in enumerate(spans)]
    if not scored:
        return Answer.none(0.0, method="snap", reason="no candidates", reply=reply)
    f1, _, best = max(scored)
    if f1 < min_f1:
        return Answer.none(f1, method="snap", reason=f"best token F1 {f1:.2f} < {min_f1}", reply=reply)
    return Answer.of(spans[best], f1, method="snap", reply=reply)
