"""The retriever every group shares: k chunks of one contract for a question.

    passages = retrieve("What is the governing law?", contract_id, 3)
    retrieve = make_retriever(embedder, chroma)                     # hybrid: RRF of BM25 and the index's vectors
    retrieve = make_retriever(embedder, chroma, model_dir=folder)   # the fine-tuned MiniLM (`retriever_model`)

Measured on 970 held-out questions (78 eval contracts, benchmarks/bench_retrievers.py), recall@3 at ~2,950
context chars: dense 0.497, BM25 0.491, hybrid 0.545, fine-tuned dense 0.799 (640 train-split pairs, 40 steps).
So the fine-tuned model is used whenever `retriever_model` has published one, hybrid otherwise (it costs no
training: BM25 over the question's contract chunks, read once per contract from the index together with their
stored vectors). The fine-tuned model embeds a contract's chunks on its first question and keeps them, so the
cost is one contract's chunks per contract asked about, never the whole corpus. Both rank with
`hybrid.HybridRetriever` (the fine-tuned one with its BM25 weight at 0), the ranker `retrieval_eval` measures.
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selfinstruct.retrieval.hybrid import HybridRetriever
from selfinstruct.retrieval.model import model_embedder

RETRIEVERS = ("hybrid", "dense", "fine_tuned")
DEFAULT_RETRIEVER = "hybrid"  # without a fine-tuned model


def make_retriever(
    embedder: Any, chroma: Any, method: str = DEFAULT_RETRIEVER, model_dir: str | Path | None = None
) -> Callable[[str, str, int], list[str]]:
    """A plain callable over the index, so DSPy programs and prompt builders need no Dagster resource.

    `embedder` and `chroma` are the project's resources (anything with `.get()` / `.store(embedder)`).

    `model_dir` (a `retriever_model` folder) means method "fine_tuned": that model ranks the contract's chunks.
    """
    method = "fine_tuned" if model_dir is not None else method
    if method not in RETRIEVERS:
        raise ValueError(f"retriever method must be one of {RETRIEVERS}, got {method!r}")
    if method == "fine_tuned" and model_dir is None:
        raise ValueError("the fine_tuned retriever needs model_dir (retriever_model's recorded path)")
    emb = embedder.get()
    store = chroma.store(emb)

    def dense(question: str, contract_id: str, k: int) -> list[str]:
        [hits] = store.search(emb.embed([question]), [contract_id], k)
        return [h["text"] for h in hits]

    if method == "dense":
        return dense
    tuned = model_embedder(model_dir) if model_dir is not None else None

    def from_index(contract_id: str) -> tuple[Sequence[dict], np.ndarray | None]:
        got = store.collection().get(where={"contract_id": contract_id}, include=["documents", "embeddings"])
        rows = [{"chunk_id": i, "contract_id": contract_id, "text": t} for i, t in zip(got["ids"], got["documents"])]
        # The index's vectors are the index embedder's; a fine-tuned model embeds the texts itself.
        return rows, (np.asarray(got["embeddings"], dtype=np.float32) if rows and tuned is None else None)

    if tuned is not None:
        ranker = HybridRetriever((), tuned, weights=(0.0, 1.0), fetch=from_index)
    else:
        ranker = HybridRetriever((), emb.embed, fetch=from_index)

    def retrieve(question: str, contract_id: str, k: int) -> list[str]:
        texts = {c["chunk_id"]: c["text"] for c in ranker.chunks(contract_id)}
        return [texts[i] for i, _ in ranker.search(question, contract_id, k)]

    return retrieve
