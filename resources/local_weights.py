"""LocalLM's weights: a transformers model folder (plus an optional LoRA adapter, merged in), loaded on first use.

    tok, model, stops = lm.load()   # via LoadedWeightsMixin; instances of the same weights share one copy

Dagster-free. Every LocalLM's runtime is tracked here, so that `unload_all` (run by
selfinstruct.core.memory.release_memory) can drop the weights before a training child starts; each reloads on its
next call. The mixin is LocalLM's (resources/local_lm.py): it reads the LM's model_dir, adapter_path, precision,
device and runtime.
"""

from __future__ import annotations

import logging
import threading
import weakref
from types import SimpleNamespace

from resources.model_folders import ADAPTER_FIX, MODEL_FIX, ModelLoadError
from selfinstruct.core.memory import on_release

log = logging.getLogger(__name__)


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


class LoadedWeightsMixin:
    """`load` for LocalLM: the (tokenizer, model, stop ids) it generates with, shared between instances."""

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
