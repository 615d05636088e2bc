"""Split contract text into overlapping character windows that end on whitespace."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator


def chunk_id_for(contract_id: str, start: int, text: str) -> str:
    """Content-addressed: the same text at the same place of the same contract keeps its id."""
    return hashlib.sha256(f"{contract_id}\x00{start}\x00{text}".encode()).hexdigest()[:24]


def check_chunking(size: int, overlap: int) -> None:
    """ValueError unless size > 0 and 0 <= overlap < size (an overlap as large as the window never advances)."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"chunk size must be > 0 and 0 <= overlap < size (got size={size}, overlap={overlap})")


def chunk_spans(text: str, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """(start, end) windows of about `size` chars, `overlap` chars shared, cut at whitespace when possible."""
    check_chunking(size, overlap)
    n = len(text)
    start = 0
    while start < n:
        end = min(start + size, n)
        if end < n:
            cut = text.rfind(" ", start + size // 2, end)
            cut = max(cut, text.rfind("\n", start + size // 2, end))
            if cut > start:
                end = cut
        yield start, end
        if end >= n:
            break
        nxt = max(end - overlap, start + 1)
        # start the next window on a word boundary too
        ws = text.find(" ", nxt, end)
        start = ws + 1 if 0 <= ws < end - 1 else nxt


def chunk_contracts(contracts: Iterable[dict], size: int, overlap: int) -> list[dict]:
    """Rows (chunk_id, contract_id, start, end, text) for every contract; whitespace-only windows are skipped."""
    rows = []
    for c in contracts:
        for start, end in chunk_spans(c["text"], size, overlap):
            piece = c["text"][start:end]
            if piece.strip():
                rows.append(
                    {
                        "chunk_id": chunk_id_for(c["contract_id"], start, piece),
                        "contract_id": c["contract_id"],
                        "start": start,
                        "end": end,
                        "text": piece,
                    }
                )
    return rows
