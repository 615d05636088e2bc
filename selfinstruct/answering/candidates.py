"""Candidate answers: sentences of the retrieved passages and windows of 1-3 consecutive sentences.

    spans = candidate_spans([{"text": chunk["text"], "start": chunk["start"]} for chunk in top_chunks])
    sentences = split_sentences(contract_text[1000:2000], offset=1000)  # contract offsets

Dagster-free. Every candidate is a verbatim slice of its passage, so whatever a scorer picks is a quotation.
When passages carry contract offsets, overlapping chunks are merged first: a sentence cut by one chunk's edge
is whole in the merged text, and the 200-char chunk overlaps do not produce duplicate candidates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from selfinstruct.answering.answer import Span

Passage = str | Mapping  # a text, or a chunk row with "text" and (optionally) its contract offset "start"

_CLOSERS = "\"')]\u201d\u2019"
_OPENERS = "\"'([\u201c\u2018"
# Words whose trailing period does not end a sentence in contracts ("Acme Inc. shall", "Sec. 2", "No. 5").
_ABBREV = {
    "inc",
    "co",
    "corp",
    "ltd",
    "llc",
    "l.l.c",
    "no",
    "nos",
    "sec",
    "secs",
    "art",
    "arts",
    "para",
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "vs",
    "v",
    "jr",
    "sr",
    "approx",
    "dept",
    "et",
    "al",
    "etc",
    "u.s",
    "e.g",
    "i.e",
    "n.a",
    "s.a",
    "n.v",
    "b.v",
    "l.p",
    "p.c",
    "pty",
    "plc",
    "fig",
    "ex",
    "exh",
    "min",
    "max",
}
_GAP = re.compile(r"\s+")


def _ends_sentence(text: str, gap_start: int, gap_end: int) -> bool:
    if "\n" in text[gap_start:gap_end]:
        return True  # CUAD texts keep one paragraph, heading or list item per line
    p = gap_start - 1
    while p >= 0 and text[p] in _CLOSERS:
        p -= 1
    if p < 0 or gap_end >= len(text):
        return False
    last, nxt = text[p], text[gap_end]
    if last == ";":
        return True  # enumerated obligations: "(a) ...; (b) ...; and (c) ..."
    if last == ":":
        return nxt in _OPENERS or nxt.isdigit()
    if last not in ".?!" or not (nxt.isupper() or nxt.isdigit() or nxt in _OPENERS):
        return False
    word = text[text.rfind(" ", 0, p) + 1 : p].lstrip(_OPENERS).lower()
    # Initials ("J. Smith") and abbreviations do not end a sentence; "2." headings are merged later by length.
    return not (len(word) == 1 and word.isalpha()) and word not in _ABBREV


def split_sentences(text: str, offset: int | None = 0, min_chars: int = 25) -> list[Span]:
    """Sentences of `text` (whitespace-trimmed); `text[s.start - offset:s.end - offset] == s.text`.

    Pieces shorter than `min_chars` ("2.", "(a)", "ARTICLE 5") are joined to the next sentence, so a window
    never is a bare heading. With `offset=None` the spans carry no offsets.
    """
    cuts = [0] + [m.end() for m in _GAP.finditer(text) if _ends_sentence(text, m.start(), m.end())] + [len(text)]
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        seg = text[a:b]
        lo = a + len(seg) - len(seg.lstrip())
        hi = a + len(seg.rstrip())
        if hi > lo:
            pieces.append([lo, hi])
    merged: list[list[int]] = []
    for piece in pieces:
        if merged and merged[-1][1] - merged[-1][0] < min_chars:
            merged[-1][1] = piece[1]  # a short piece heads the sentence after it
        else:
            merged.append(piece)
    if len(merged) > 1 and merged[-1][1] - merged[-1][0] < min_chars:
        last = merged.pop()  # popped first: `merged[-2][1] = merged.pop()[1]` indexes after the pop
        merged[-1][1] = last[1]
    base = offset or 0
    return [
        Span(text[a:b], None if offset is None else base + a, None if offset is None else base + b) for a, b in merged
    ]


def _regions(passages: Sequence[Passage]) -> list[tuple[str, int | None]]:
    """(text, contract start) of each contiguous stretch; overlapping chunks with offsets are merged."""
    rows = [(p, None) if isinstance(p, str) else (p["text"], p.get("start")) for p in passages]
    if not rows or any(start is None for _, start in rows):
        return [(text, None) for text, _ in rows]
    out: list[list] = []
    for text, start in sorted(rows, key=lambda r: r[1] or 0):
        if out and start <= out[-1][1] + len(out[-1][0]):
            cur_end = out[-1][1] + len(out[-1][0])
            out[-1][0] += text[cur_end - start :]  # chunks are slices of one contract: the overlap is identical
        else:
            out.append([text, int(start or 0)])  # every start is set here (checked above)
    return [(t, s) for t, s in out]


def candidate_spans(
    passages: Sequence[Passage],
    max_sentences: int = 3,
    max_chars: int = 1500,
    max_candidates: int = 300,
    min_chars: int = 25,
) -> list[Span]:
    """Deduplicated windows of 1..`max_sentences` consecutive sentences, shortest windows first.

    Windows longer than `max_chars` are dropped (single sentences never are); at most `max_candidates` are
    returned, so the scorer's cost per question is bounded whatever the passages.
    """
    per_region = [(text, split_sentences(text, 0, min_chars), start) for text, start in _regions(passages)]
    out, seen = [], set()
    for width in range(1, max_sentences + 1):
        for text, sents, start in per_region:
            for i in range(len(sents) - width + 1):
                a, b = sents[i].start or 0, sents[i + width - 1].end or 0  # offset 0: never None
                if width > 1 and b - a > max_chars:
                    continue
                span = Span(text[a:b], None if start is None else start + a, None if start is None else start + b)
                key = (span.start, span.end) if start is not None else span.text
                if key not in seen:
                    seen.add(key)
                    out.append(span)
                    if len(out) >= max_candidates:
                        return out
    return out
