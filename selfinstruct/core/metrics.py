"""Deterministic answer metrics in the SQuAD / CUAD style: exact match, token F1 and CUAD's Jaccard match.

    .venv/bin/python -m pytest -q tests/test_metrics.py

Every metric takes one prediction and a list of gold spans and returns the best score over the golds.
A gold that normalises to nothing is ignored; with no usable gold the score is 0.0, because these metrics
score answerable questions only (CUAD's "no clause" questions need a different rule).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str | None) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace (SQuAD's normaliser)."""
    s = (s or "").lower()
    # Unicode categories rather than string.punctuation: contracts use curly quotes and typographic dashes.
    s = "".join(ch for ch in s if not unicodedata.category(ch).startswith("P"))
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _golds(golds: str | Sequence[str] | None) -> list[str]:
    # A bare string would otherwise be iterated character by character.
    if golds is None:
        return []
    if isinstance(golds, str):
        golds = [golds]
    return [n for n in (normalize_answer(g) for g in golds) if n]


def exact_match(pred: str | None, golds: str | Sequence[str] | None) -> float:
    """1.0 when the normalised prediction equals any normalised gold, else 0.0."""
    p = normalize_answer(pred)
    return float(any(p == g for g in _golds(golds)))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(pred: str | None, golds: str | Sequence[str] | None) -> float:
    """SQuAD token-overlap F1 (multiset of normalised words), best over the golds."""
    p = normalize_answer(pred).split()
    return max((_f1(p, g.split()) for g in _golds(golds)), default=0.0)


def jaccard(a: str | None, b: str | None) -> float:
    """Jaccard similarity of the sets of normalised words; 0.0 when both are empty (nothing to agree on)."""
    sa, sb = set(normalize_answer(a).split()), set(normalize_answer(b).split())
    union = sa | sb
    return len(sa & sb) / len(union) if union else 0.0


def cuad_match(pred: str | None, golds: str | Sequence[str] | None, threshold: float = 0.5) -> float:
    """CUAD paper's criterion: 1.0 when the word Jaccard with any gold span is >= threshold, else 0.0."""
    if not normalize_answer(pred):
        return 0.0
    return float(any(jaccard(pred, g) >= threshold for g in _golds(golds)))
