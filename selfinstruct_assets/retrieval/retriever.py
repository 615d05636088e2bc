"""The retriever every group shares: k chunks of one contract for a question.

    retrieve = make_retriever(embedder, chroma)              # hybrid: RRF of BM25 and the index's dense vectors
    passages = retrieve("What is the governing law?", contract_id, 3)
    dense = make_retriever(embedder, chroma, method="dense")  # the vector index alone

Hybrid is the default because `retrieval_eval` measures it above dense and BM25 alone on held-out contracts
(see its `recall` table and `best_method`) at no training cost: BM25 runs over the question's contract chunks,
read once per contract from the index together with their stored vectors, so nothing is re-embedded.
"""

from collections.abc import Callable

import numpy as np

from resources.project import ChromaResource, EmbedderResource

from .hybrid import RRF_K, bm25_index, bm25_ranking, dense_ranking, rrf_fuse

RETRIEVERS = ("hybrid", "dense")
DEFAULT_RETRIEVER = "hybrid"


def make_retriever(embedder: EmbedderResource, chroma: ChromaResource,
                   method: str = DEFAULT_RETRIEVER) -> Callable[[str, str, int], list[str]]:
    """A plain callable over the index, so DSPy programs and prompt builders need no Dagster resource."""
    if method not in RETRIEVERS:
        raise ValueError(f"retriever method must be one of {RETRIEVERS}, got {method!r}")
    emb = embedder.get()
    store = chroma.store(emb)

    def dense(question: str, contract_id: str, k: int) -> list[str]:
        [hits] = store.search(emb.embed([question]), [contract_id], k)
        return [h["text"] for h in hits]

    if method == "dense":
        return dense
    contracts: dict[str, tuple] = {}

    def hybrid(question: str, contract_id: str, k: int) -> list[str]:
        if contract_id not in contracts:
            got = store.collection().get(where={"contract_id": contract_id}, include=["documents", "embeddings"])
            ids, texts = list(got["ids"]), list(got["documents"])
            vecs = np.asarray(got["embeddings"], dtype=np.float32) if ids else np.zeros((0, 1), np.float32)
            contracts[contract_id] = (ids, texts, vecs, bm25_index(texts) if ids else None)
        ids, texts, vecs, index = contracts[contract_id]
        if not ids:
            return []
        by_id = dict(zip(ids, texts))
        fused = rrf_fuse([bm25_ranking(question, ids, texts, index),
                          dense_ranking(np.asarray(emb.embed([question])[0]), ids, vecs)], k=RRF_K, top_k=k)
        return [by_id[i] for i, _ in fused]

    return hybrid
