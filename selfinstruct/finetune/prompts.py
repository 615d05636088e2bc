"""The chat prompt fine-tuned models are trained and evaluated on: `answering.quote_messages` over fitted excerpts.

    messages = quote_prompt("What is the governing law?", ["excerpt 1", "excerpt 2"], max_chars=2000)
    row = sft_row(messages, "This Agreement is governed by the laws of Delaware.")  # quote, or NO_CLAUSE

Dagster-free. One prompt (the answering module's) for training rows, candidate answers and the benchmark,
so a model is always evaluated on the format it learned.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfinstruct.answering import quote_messages
from selfinstruct.corpus.spans import normalize_ws


def fit_passages(passages: Sequence[str], max_chars: int, must_include: str | None = None) -> list[str]:
    """Passages in order, within `max_chars`; `must_include` (the source of a training answer) always kept.

    A training target must be readable in its prompt: when retrieval missed the passage the answer came
    from, that passage goes first, so the model never learns to answer from nothing.
    """
    out = [p for p in passages if p.strip()]
    if must_include and not any(normalize_ws(must_include) in normalize_ws(p) for p in out):
        out = [must_include] + out
    kept: list[str] = []
    used = 0
    for p in out:
        if kept and used + len(p) > max_chars:
            break
        kept.append(p[:max_chars])
        used += len(kept[-1])
    return kept


def quote_prompt(question: str, passages: Sequence[str], max_chars: int, must_include: str | None = None) -> list[dict]:
    """`quote_messages` over `fit_passages`: the prompt of every SFT row, candidate answer and preference pair."""
    return quote_messages(question, fit_passages(passages, max_chars, must_include))


def sft_row(messages: list[dict], answer: str) -> dict:
    return {"prompt": messages, "completion": [{"role": "assistant", "content": answer}]}


def preference_row(messages: list[dict], chosen: str, rejected: str) -> dict:
    return {
        "prompt": messages,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }
