"""Embed each text once per process: retrieval_eval, sft_dataset, rag_responses and the benchmark ask about the
same contracts, and a fine-tuned retriever re-embeds a contract's chunks on its first question.

    embed = memoised(model.encode_fn)     # embed(texts) -> (n, dim) unit vectors, as before
    embed(chunks); embed(chunks)          # the second call embeds nothing

Dagster-free. Keys are the texts themselves; past `max_entries` the memo starts over rather than grow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol, cast

import numpy as np


class MemoisedEmbed(Protocol):
    """An embed function that keeps its vectors in `memo` ({text: vector})."""

    memo: dict[str, np.ndarray]

    def __call__(self, texts: Sequence[str]) -> np.ndarray: ...


def memoised(embed: Callable[[list[str]], np.ndarray], max_entries: int = 200_000) -> MemoisedEmbed:
    memo: dict[str, np.ndarray] = {}
    lock = threading.Lock()

    def cached(texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return embed([])
        with lock:
            missing = list(dict.fromkeys(t for t in texts if t not in memo))
            if missing:
                vecs = np.asarray(embed(missing), dtype=np.float32)
                if len(memo) + len(missing) > max_entries:
                    memo.clear()
                memo.update(zip(missing, vecs))
            return np.stack([memo[t] for t in texts])

    out = cast(MemoisedEmbed, cached)
    out.memo = memo  # for tests and metadata: how many texts were embedded
    return out
