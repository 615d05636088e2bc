"""A disk cache in front of any DSPy LM: a call repeated with the same inputs costs no generation.

    lm = CachedLM(BedrockConverseLM("anthropic.claude-3-haiku-20240307-v1:0"), backend="bedrock",
                  cache_dir=Path(".selfinstruct/cache/lm"))

The key is a sha256 over (backend, model, adapter, messages, params), where params are the wrapped
LM's own settings merged with the call's (temperature, max_tokens, rollout_id, ...). A DSPy caller that
wants a fresh sample passes a new `rollout_id`, which changes the key. Only answer texts and finish
reasons are stored: never credentials, endpoints or headers. The local backend keys by weight hashes
instead of names and has its own cache (`resources.local_lm`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dspy

# Settings that change where or how a request travels, not what the model is asked.
_TRANSPORT = frozenset(
    {
        "api_key",
        "api_base",
        "base_url",
        "headers",
        "extra_headers",
        "timeout",
        "num_retries",
        "cache",
        "region_name",
        "client",
    }
)


def _plain(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        content = m.get("content")
        if not isinstance(content, str):
            content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content or [])
        out.append({"role": m["role"], "content": content})
    return out


class CachedLM(dspy.BaseLM):
    """Wraps a DSPy LM; answers come from `cache_dir` when the same request was answered before."""

    def __init__(self, inner: dspy.BaseLM, *, backend: str, cache_dir: str | Path, adapter: str | None = None):
        self.inner, self.backend, self.adapter = inner, backend, adapter
        self.cache_dir = Path(cache_dir)
        super().__init__(model=inner.model, model_type="chat", cache=False)
        self.kwargs = {}  # the inner LM merges its own settings; ours would only duplicate them
        self._store = None
        self.misses = 0

    def __repr__(self) -> str:
        return f"CachedLM({self.inner!r}, backend={self.backend!r})"

    def _cache(self):
        if self._store is None:
            import diskcache

            self._store = diskcache.Cache(str(self.cache_dir))
        return self._store

    def cache_key(self, messages: list[dict], kwargs: dict) -> str:
        params = {k: v for k, v in {**getattr(self.inner, "kwargs", {}), **kwargs}.items() if k not in _TRANSPORT}
        payload = {
            "backend": self.backend,
            "model": self.inner.model,
            "adapter": self.adapter,
            "messages": _plain(messages),
            "params": params,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()

    def forward(self, prompt=None, messages=None, **kwargs):
        messages = messages or [{"role": "user", "content": prompt}]
        key = self.cache_key(messages, kwargs)
        store = self._cache()
        hit = store.get(key)
        if hit is None:
            outputs = self.inner(messages=messages, **kwargs)
            texts = [o["text"] if isinstance(o, dict) else o for o in outputs]
            if any(not isinstance(t, str) for t in texts):
                raise TypeError(f"{self.inner!r} returned non-text outputs; CachedLM caches text answers only")
            usage = dict((self.inner.history[-1].get("usage") or {}) if getattr(self.inner, "history", None) else {})
            hit = {"texts": texts, "usage": {k: usage.get(k, 0) for k in ("prompt_tokens", "completion_tokens")}}
            store.set(key, hit)
            self.misses += 1
            cached = False
        else:
            cached = True
        choices = [
            SimpleNamespace(
                index=i, finish_reason="stop", message=SimpleNamespace(role="assistant", content=t, tool_calls=None)
            )
            for i, t in enumerate(hit["texts"])
        ]
        usage = {k: 0 if cached else v for k, v in hit["usage"].items()}
        usage["total_tokens"] = sum(usage.values())
        return SimpleNamespace(model=self.model, choices=choices, usage=usage, cache_hit=cached)

    async def aforward(self, prompt=None, messages=None, **kwargs):
        return await asyncio.to_thread(self.forward, prompt=prompt, messages=messages, **kwargs)

    def dump_state(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "adapter": self.adapter}
