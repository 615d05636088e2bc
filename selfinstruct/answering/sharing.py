"""Sharing work between candidate replies: which token sequences to run, and the KV cache across versions.

    runs = maximal([[5, 6], [5, 6, 7], [8]])  # [(5, 6, 7), (8,)]: [5, 6] is read off (5, 6, 7)'s pass

Dagster-free helpers of `scoring.SpanScorer`.
"""

from __future__ import annotations

import inspect


def cache_kwarg(model) -> str:
    # transformers 5.2x renamed `past_key_values` to `cache` (the old name warns); peft passes either through.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def cache_of(output):
    return getattr(output, "cache", None) or output.past_key_values


def maximal(seqs: list[list[int]]) -> list[tuple]:
    """Token sequences that are no other's prefix, in lexicographic order (a prefix sorts right before its
    extensions, so one comparison with the next sequence decides)."""
    lex = sorted({tuple(x) for x in seqs})
    return [t for i, t in enumerate(lex) if i + 1 == len(lex) or lex[i + 1][: len(t)] != t]


def keep_scores(lp, run: tuple, end: int) -> tuple:
    """Only what replies need from a run's (len+1, vocab) log-probs: kept whole, they would not fit in memory."""
    import torch

    toks = lp[torch.arange(len(run)), torch.tensor(run, dtype=torch.long)] if run else lp.new_zeros(0)
    return torch.cat([lp.new_zeros(1), toks.double().cumsum(0).float()]), lp[:, end]
