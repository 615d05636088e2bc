"""LocalLM's generation: one left-padded `generate` per batch of chat conversations, batches cut to a token budget.

    lm._generate([messages, ...], max_tokens)   # via BatchGenerateMixin; result dicts, no cache

Dagster-free. The mixin is LocalLM's (resources/local_lm.py), which puts its disk cache and the gathering of
concurrent calls in front of it; it reads the LM's seed, sample_temperature, batch_size and max_batch_tokens.
"""

from __future__ import annotations

from typing import Any

from resources.lm_batches import plan_batches
from selfinstruct.core.memory import trim_heap


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if not (isinstance(part, dict) and part.get("type") == "text"):
            raise ValueError(f"LocalLM reads text only; got content part {part!r:.80}")
        parts.append(part["text"])
    return "".join(parts)


def normalize(messages: list[dict]) -> list[dict]:
    """Chat messages as plain {role, content: str} dicts, the form chat templates and cache keys use."""
    return [{"role": m["role"], "content": _text(m.get("content"))} for m in messages]


class BatchGenerateMixin:
    """`_generate` and the batch plan for LocalLM; `load` comes from LoadedWeightsMixin."""

    # -- generation ----------------------------------------------------------------------------------
    def _generate(self, batch: list[list[dict]], max_tokens: int) -> list[dict]:
        """One left-padded greedy `generate` over a batch of conversations (no cache)."""
        import torch

        tok, model, stops = self.load()
        texts = self._prompts(batch)
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with self._rt.loaded.lock, torch.inference_mode():
            torch.manual_seed(self.seed)
            sampling = (
                {"do_sample": True, "temperature": self.sample_temperature, "top_p": 0.95, "top_k": 50}
                if self.sample_temperature > 0
                else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            )
            out = model.generate(
                **enc, max_new_tokens=max_tokens, pad_token_id=tok.pad_token_id, eos_token_id=stops, **sampling
            )
            # Each decoding step grows every layer's KV cache into a slightly larger heap block and frees the last:
            # without a trim after each batch the freed blocks piled up (1.8 -> 4.2 GiB over the benchmark's RAG
            # answering, benchmarks/RESULTS.md). Mapping them instead (a 1 MiB mmap threshold) cost ~70 % time.
            trim_heap()
        width = enc["input_ids"].shape[1]
        results = []
        for row, mask in zip(out[:, width:].tolist(), enc["attention_mask"].sum(dim=1).tolist()):
            end = next((i for i, t in enumerate(row) if t in stops), len(row))
            results.append(
                {
                    "text": tok.decode(row[:end], skip_special_tokens=True).strip(),
                    "prompt_tokens": int(mask),
                    "completion_tokens": end,
                    "finish_reason": "stop" if end < len(row) else "length",
                }
            )
        return results

    def _prompts(self, batch: list[list[dict]]) -> list[str]:
        tok = self.load()[0]
        return [tok.apply_chat_template(normalize(m), tokenize=False, add_generation_prompt=True) for m in batch]

    def _batches(self, conversations: list[list[dict]], max_tokens: int) -> list[range]:
        if self.max_batch_tokens is None or len(conversations) <= 1:
            return plan_batches([0] * len(conversations), self.batch_size, None)
        tok = self.load()[0]
        lengths = [len(ids) for ids in tok(self._prompts(conversations), add_special_tokens=False)["input_ids"]]
        return plan_batches(lengths, self.batch_size, self.max_batch_tokens, max_tokens)
