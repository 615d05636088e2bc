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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
import weakref
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dspy

from resources.lm_batches import MAX_BATCH_TOKENS, plan_batches
from resources.model_folders import (
    ADAPTER_FIX,
    MODEL_FIX,
    ModelLoadError,
    adapter_hash,
    check_adapter_dir,
    check_model_dir,
    model_hash,
)
from selfinstruct.core.cpu import resolve_precision
from selfinstruct.core.memory import on_release, trim_heap

log = logging.getLogger(__name__)

BACKEND = "transformers"


class _Weights:
    """A loaded tokenizer and model; one generate at a time runs on it, whichever instance asks."""

    __slots__ = ("tok", "model", "stops", "lock", "__weakref__")

    def __init__(self, tok, model, stops: list[int]):
        self.tok, self.model, self.stops, self.lock = tok, model, stops, threading.Lock()


_SHARED: weakref.WeakValueDictionary[tuple, _Weights] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


class _Runtime(SimpleNamespace):
    """What a LocalLM and its copies share: the loaded weights (or the load error), the cache handle, the queue."""

    __hash__ = object.__hash__  # by identity, for the WeakSet (SimpleNamespace compares by value)


_RUNTIMES: weakref.WeakSet[_Runtime] = weakref.WeakSet()


# How an adapter is applied when loaded (see _load_weights); part of every key of answers computed with one.
LORA_LOADING = "merged"


@on_release
def unload_all() -> int:
    """Drop every live LocalLM's reference to its weights (each reloads on its next call); how many it dropped.

    Weights still in use by a running generate stay alive until it returns (the caller holds them)."""
    dropped = 0
    for rt in list(_RUNTIMES):
        with rt.lock:
            dropped += rt.loaded is not None
            rt.loaded = None
    return dropped


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


class LocalLM(dspy.BaseLM):
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

    # -- loading -------------------------------------------------------------------------------------
    def load(self) -> tuple:
        """(tokenizer, model, stop ids), loaded on first use; instances of the same folder, adapter, precision
        and device share one copy (a run holds several: generator, judge, teacher, samplers)."""
        rt = self._rt
        with rt.lock:
            if rt.failed is not None:  # a folder that failed once fails again; don't reload it per call
                raise rt.failed
            if rt.loaded is None:
                import torch

                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                key = (
                    str(self.model_dir.resolve()),
                    self.adapter_path and str(self.adapter_path.resolve()),
                    self.precision,
                    device,
                )
                with _SHARED_LOCK:
                    weights = _SHARED.get(key)
                    if weights is None:
                        try:
                            weights = _SHARED[key] = self._load_weights(device)
                        except Exception as exc:
                            rt.failed = self._load_error(exc)
                            raise rt.failed from exc
                rt.loaded = weights  # a strong reference: the shared copy lives while an instance uses it
            w = rt.loaded
            return w.tok, w.model, w.stops

    def _load_error(self, exc: Exception) -> ModelLoadError:
        what = f"model folder {self.model_dir}" + (f" with adapter {self.adapter_path}" if self.adapter_path else "")
        return ModelLoadError(
            f"could not load {what}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}; "
            f"{MODEL_FIX}" + (f"; or {ADAPTER_FIX}" if self.adapter_path else "")
        )

    def _load_weights(self, device: str) -> _Weights:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.model_dir)
        tok.padding_side = "left"  # generation continues from the right edge of every row
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype)
        if self.adapter_path:
            from peft import PeftModel

            # Merged into the weights: peft's separate LoRA matmuls cost ~23 % of a scoring pass here
            # (benchmarks/results_lora_merge.json); answers agree up to bfloat16 rounding.
            model = PeftModel.from_pretrained(model, self.adapter_path).merge_and_unload()
        model.to(device).eval()
        stops = {
            tok.eos_token_id,
            *(tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>") if t in tok.get_vocab()),
        }
        log.info("LocalLM loaded %s on %s", self.model, device)
        return _Weights(tok, model, sorted(i for i in stops if i is not None))

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
