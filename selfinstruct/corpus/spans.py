"""Locate highlighted clauses in contract text despite whitespace and line-break differences."""

from __future__ import annotations

import re
from dataclasses import dataclass

_WS = re.compile(r"\s+")
OMITTED = "<omitted>"


@dataclass(frozen=True)
class NormalizedText:
    """Text with whitespace runs collapsed to one space, and a map back to original offsets."""

    text: str
    lower: str
    offsets: list[int]  # offsets[i] = index in the original of normalised char i
    original_len: int

    @classmethod
    def of(cls, original: str) -> NormalizedText:
        out: list[str] = []
        offsets: list[int] = []
        pos = 0
        for m in _WS.finditer(original):
            for i in range(pos, m.start()):
                out.append(original[i])
                offsets.append(i)
            out.append(" ")
            offsets.append(m.start())
            pos = m.end()
        for i in range(pos, len(original)):
            out.append(original[i])
            offsets.append(i)
        text = "".join(out)
        return cls(text=text, lower=text.lower(), offsets=offsets, original_len=len(original))

    def locate(self, needle: str, start_hint: int = 0) -> tuple[int, int] | None:
        """(start, end) of `needle` in the original text, or None; exact, then case-insensitive."""
        norm = normalize_ws(needle)
        if not norm:
            return None
        idx = self.text.find(norm, start_hint)
        if idx < 0:
            idx = self.text.find(norm)
        if idx < 0:
            idx = self.lower.find(norm.lower())
        if idx < 0:
            return None
        end_norm = idx + len(norm) - 1
        return self.offsets[idx], self.offsets[end_norm] + 1


def normalize_ws(s: str) -> str:
    return _WS.sub(" ", s).strip()


def split_omitted(clause: str) -> list[str]:
    """A highlight with `<omitted>` markers is several discontinuous pieces."""
    return [p.strip() for p in clause.split(OMITTED) if p.strip()]


def verbatim_span(answer: str, contract_text: str) -> str | None:
    """The slice of `contract_text` that `answer` quotes (whitespace may differ), or None if it quotes none.

    Synthetic answers are whitespace-normalised sentences; the target must be the contract's own characters.
    """
    words = answer.split()
    if not words:
        return None
    found = re.search(r"\s+".join(re.escape(w) for w in words), contract_text)
    return found.group(0) if found else None
