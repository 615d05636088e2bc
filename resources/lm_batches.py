"""How LocalLM cuts the conversations it gathered into `generate` batches. Dagster-free, torch-free."""

from __future__ import annotations

# Padded tokens per generate (rows x (longest prompt + new tokens)): a batch's prefill activations grow with it.
# benchmarks/bench_lm_batches.py, 8 prompts of ~2,750 tokens (a few-shot RAG prompt): one batch raised the
# process's peak by 1.23 GiB, batches of 2 under 8192 by 0.54 GiB, and were no slower (51 vs 56 s).
MAX_BATCH_TOKENS = 8192


def plan_batches(lengths: list[int], batch_size: int, max_batch_tokens: int | None, new_tokens: int = 0) -> list[range]:
    """Consecutive batches (index ranges) of at most `batch_size` prompts whose padded size, rows x (longest
    prompt + new_tokens), stays within `max_batch_tokens` (None: no token limit); a prompt over the limit on its
    own is a batch of one."""
    batches, start, longest = [], 0, 0
    for i, n in enumerate(lengths):
        grown = max(longest, n)
        full = i - start >= batch_size or (
            max_batch_tokens is not None and (i - start + 1) * (grown + new_tokens) > max_batch_tokens
        )
        if i > start and full:
            batches.append(range(start, i))
            start, grown = i, n
        longest = grown
    if lengths:
        batches.append(range(start, len(lengths)))
    return batches
