"""A DSPy LM that runs a local transformers model folder (plus an optional LoRA adapter), greedily.

    lm = LocalLM(prepare_base_model(Path(".selfinstruct/models")), cache_dir=Path(".selfinstruct/cache/lm"))
    with dspy.context(lm=lm):
        dspy.Predict("question -> answer")(question="...")
    lm.generate_batch([[{"role": "user", "content": "..."}], ...])  # many prompts, left-padded batches

Calls made at the same time from several threads (`thread_map` in the evaluation code, DSPy's
`Parallel`) are gathered into one batched `generate`: on a CPU a batch of 8 costs little more than
one answer, since decoding time is dominated by per-step overhead.

Dagster-free. Decoding is greedy (or, with `sample_temperature > 0`, sampled with a fixed seed, for
several candidates per question) and seeded, so a call is a pure function of (model weights, adapter
weights, messages, max_tokens): results go to a disk cache keyed by content hashes of both folders,
and repeating a call costs no generation. The model loads on first use, once per instance. A folder
that is not a model (no config.json or weights) is refused when the LM is built, and one that fails to
load fails every call, both with `ModelLoadError` naming the folder and the fix.

Loading and sharing the weights live in local_weights.py, the batched `generate` in local_generation.py;
this module holds the DSPy face, the disk cache and the gathering of concurrent calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dspy

from resources.lm_batches import MAX_BATCH_TOKENS
from resources.local_generation import BatchGenerateMixin, normalize
from resources.local_weights import _RUNTIMES, LoadedWeightsMixin, _Runtime
from resources.model_folders import adapter_hash, check_adapter_dir, check_model_dir, model_hash
from selfinstruct.core.cpu import resolve_precision

log = logging.getLogger(__name__)

BACKEND = "transformers"


# How an adapter is applied when loaded (local_weights._load_weights); part of every key of answers computed with one.
LORA_LOADING = "merged"


class LocalLM(LoadedWeightsMixin, BatchGenerateMixin, dspy.BaseLM):
    """`dspy.BaseLM` over a transformers causal LM folder on CPU (CUDA when present), with a disk cache."""

    def __init__(
        self,
        model_dir: str | Path,
        adapter_path: str | Path | None = None,
        *,
        cache_dir: str | Path | None = None,
        max_tokens: int = 256,
        seed: int = 0,
        batch_size: int = 8,
        device: str | None = None,
        sample_temperature: float = 0.0,
        precision: str = "float32",
        max_batch_tokens: int | None = MAX_BATCH_TOKENS,
        **kwargs,
    ):
        if max_tokens < 1 or batch_size < 1:
            raise ValueError("max_tokens and batch_size must be at least 1")
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be at least 1 or None, got {max_batch_tokens}")
        # bfloat16 prefills about 1.5x faster on a CPU with native bf16; answers can differ from float32's,
        # so the resolved precision is part of every cache key.
        self.precision = resolve_precision(precision, device)
        for key in ("model", "model_type", "cache", "temperature"):
            kwargs.pop(key, None)  # fixed here; BaseLM.load_state hands them back
        # Checked now, not at the first call: a wrong folder then fails where the LM is built, naming the fix.
        self.model_dir = check_model_dir(model_dir)
        self.adapter_path = check_adapter_dir(adapter_path) if adapter_path else None
        name = self.model_dir.name + (f"+{self.adapter_path.name}" if self.adapter_path else "")
        # DSPy's own response cache is off: ours is keyed by content hashes, not by a folder name.
        super().__init__(model=f"local/{name}", temperature=0.0, max_tokens=max_tokens, cache=False, **kwargs)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.seed = seed
        self.sample_temperature = float(sample_temperature)  # 0 = greedy; DSPy's `temperature` is not used
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.device = device
        # One mutable holder, so that copies made by `lm.copy()` (DSPy makes many) share one loaded model.
        self._rt = _Runtime(
            lock=threading.RLock(),
            loaded=None,
            failed=None,
            store=None,
            ids=None,
            qlock=threading.Lock(),
            pending=[],
            draining=False,
        )
        _RUNTIMES.add(self._rt)  # so that release_memory can unload it before a training child starts
        self.gather_s = 0.02  # how long the first of concurrent callers waits for the others to join

    def __repr__(self) -> str:
        return (
            f"LocalLM(model_dir={str(self.model_dir)!r}, adapter_path={self.adapter_path and str(self.adapter_path)!r})"
        )

    def copy(self, **kwargs):
        if {"model_dir", "adapter_path"} & set(kwargs):
            raise ValueError("a copy shares the loaded weights; build a new LocalLM for another model or adapter")
        return super().copy(**kwargs)

    def __deepcopy__(self, memo):
        # Programs are deep-copied by DSPy optimizers; weights and the cache handle are shared, not cloned.
        return self.copy()

    # -- the disk cache ------------------------------------------------------------------------------
    def _identity(self) -> tuple[str, str | None]:
        if self._rt.ids is None:
            self._rt.ids = (model_hash(self.model_dir), adapter_hash(self.adapter_path) if self.adapter_path else None)
        return self._rt.ids

    def _cache(self):
        if self._rt.store is None and self.cache_dir is not None:
            import diskcache

            self._rt.store = diskcache.Cache(str(self.cache_dir))
        return self._rt.store

    def cache_key(self, messages: list[dict], max_tokens: int) -> str:
        model_id, adapter_id = self._identity()
        payload = {
            "backend": BACKEND,
            "model": model_id,
            "adapter": adapter_id,
            "messages": normalize(messages),
            "params": {
                "max_tokens": max_tokens,
                "seed": self.seed,
                **({"precision": self.precision} if self.precision != "float32" else {}),
                "decoding": f"sample@{self.sample_temperature}" if self.sample_temperature else "greedy",
                **({"lora": LORA_LOADING} if adapter_id else {}),
            },
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    # -- generation ----------------------------------------------------------------------------------
    def complete(self, conversations: list[list[dict]], max_tokens: int | None = None) -> list[dict]:
        """Result dicts (text, token counts, finish_reason, cached) for many conversations, cache first."""
        max_tokens = int(max_tokens or self.kwargs.get("max_tokens") or 256)
        store = self._cache()
        keys = [self.cache_key(m, max_tokens) for m in conversations]
        found = {k: store.get(k) for k in set(keys)} if store is not None else {}
        todo = {k: m for k, m in zip(keys, conversations) if found.get(k) is None}
        fresh: dict[str, dict] = {}
        pending = list(todo.items())
        for rows in self._batches([m for _, m in pending], max_tokens):
            chunk = [pending[i] for i in rows]
            for (key, _), result in zip(chunk, self._generate([m for _, m in chunk], max_tokens)):
                fresh[key] = result
                if store is not None:
                    store.set(key, result)
        return [{**fresh[k], "cached": False} if k in fresh else {**found[k], "cached": True} for k in keys]

    def generate_batch(self, conversations: list[list[dict]], max_tokens: int | None = None) -> list[str]:
        """Answer texts for many chat conversations, in order; cached ones cost no generation."""
        return [r["text"] for r in self.complete(conversations, max_tokens)]

    def submit(self, messages: list[dict], max_tokens: int | None = None) -> dict:
        """`complete` for one conversation, batched with whatever other threads submit meanwhile.

        The first caller to find no batch in progress becomes the leader: it waits `gather_s`, then
        generates every pending request (and any that arrive while it works) before returning.
        """
        rt = self._rt
        fut: Future = Future()
        with rt.qlock:
            rt.pending.append((messages, max_tokens, fut))
            leader = not rt.draining
            rt.draining = True
        if leader:
            time.sleep(self.gather_s)
            self._drain()
        return fut.result()

    def _drain(self) -> None:
        rt = self._rt
        while True:
            with rt.qlock:
                batch, rt.pending = rt.pending, []
                if not batch:
                    rt.draining = False
                    return
            by_tokens: dict = {}
            for item in batch:
                by_tokens.setdefault(item[1], []).append(item)
            for max_tokens, items in by_tokens.items():
                try:
                    results = self.complete([m for m, _, _ in items], max_tokens)
                except BaseException as exc:  # every waiting caller sees the failure
                    for _, _, fut in items:
                        fut.set_exception(exc)
                    continue
                for (_, _, fut), result in zip(items, results):
                    fut.set_result(result)

    # -- DSPy contract -------------------------------------------------------------------------------
    def forward(self, prompt=None, messages=None, **kwargs):
        merged = {**self.kwargs, **kwargs}
        if (merged.get("temperature") or 0) > 0:
            log.debug("LocalLM decodes greedily; temperature=%s is ignored", merged["temperature"])
        result = self.submit(messages or [{"role": "user", "content": prompt}], merged.get("max_tokens"))
        n = merged.get("n") or 1  # greedy: n candidates are n copies
        choices = [
            SimpleNamespace(
                index=i,
                finish_reason=result["finish_reason"],
                message=SimpleNamespace(role="assistant", content=result["text"], tool_calls=None),
            )
            for i in range(n)
        ]
        spent = 0 if result["cached"] else 1
        usage = {
            "prompt_tokens": result["prompt_tokens"] * spent,
            "completion_tokens": result["completion_tokens"] * spent,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return SimpleNamespace(model=self.model, choices=choices, usage=usage, cache_hit=result["cached"])

    async def aforward(self, prompt=None, messages=None, **kwargs):
        return await asyncio.to_thread(self.forward, prompt=prompt, messages=messages, **kwargs)

    def dump_state(self) -> dict[str, Any]:
        state = super().dump_state()
        keep = {
            k: v for k, v in state.items() if k not in ("model", "model_type", "cache", "temperature", "num_retries")
        }
        return {
            **keep,
            "model_dir": str(self.model_dir),
            "adapter_path": self.adapter_path and str(self.adapter_path),
            "cache_dir": self.cache_dir and str(self.cache_dir),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "sample_temperature": self.sample_temperature,
            "precision": self.precision,
        }
