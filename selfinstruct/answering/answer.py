"""The one answer format every method returns: does the contract have such a clause, and which span is it.

    Answer(True, "This Agreement is governed by the laws of Delaware.", 1200, 1251, -0.4, {"method": "lm"})
    Answer.none(score=0.3, method="snap")  # "no such clause" is a first-class answer

Dagster-free. `text` is always a verbatim slice of the contract (or of a retrieved passage when offsets are
unknown), so CUAD's Jaccard match compares a quotation with a gold quotation, never a paraphrase.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A verbatim piece of source text; `start`/`end` are contract offsets, or None when the passage had none."""

    text: str
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class Answer:
    """`has_clause` False means "no such clause" (then `text` is "" and offsets are None).

    `score` is method-specific and only comparable within a method: the LM scorer's margin of the best span
    over "No such clause." (length-normalised log-prob), BM25's score, or the snap's token F1.
    """

    has_clause: bool
    text: str
    start: int | None
    end: int | None
    score: float
    method_detail: dict = field(default_factory=dict)

    @classmethod
    def of(cls, span: Span, score: float, **detail) -> Answer:
        return cls(True, span.text, span.start, span.end, float(score), detail)

    @classmethod
    def none(cls, score: float = 0.0, **detail) -> Answer:
        return cls(False, "", None, None, float(score), detail)

    @property
    def prediction(self) -> str:
        """The string a CUAD metric scores: the quotation, or "" for no clause (which matches no gold)."""
        return self.text if self.has_clause else ""
