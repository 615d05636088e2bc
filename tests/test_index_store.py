"""The packaged MiniLM embedder and the Chroma store: offline, incremental, filtered by contract."""

import numpy as np
import pytest

from resources.chroma_store import ChromaStore, ProjectEmbeddingFunction, make_client
from resources.embedders import HashingEmbedder, MiniLMEmbedder


@pytest.fixture(scope="module")
def minilm():
    return MiniLMEmbedder()


def test_minilm_loads_offline_and_ranks_paraphrases(minilm):
    vecs = minilm.embed(
        [
            "Which law governs this contract?",
            "This agreement shall be governed by the laws of New York.",
            "The supplier ships 500 units of product every quarter.",
        ]
    )
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.1


def test_bfloat16_vectors_match_float32_ones(minilm):
    texts = ["This agreement shall be governed by the laws of New York.", "Either party may terminate. " * 30]
    full = MiniLMEmbedder(precision="float32").embed(texts)
    half = MiniLMEmbedder(precision="bfloat16").embed(texts)
    assert half.dtype == np.float32 and np.allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
    assert (full * half).sum(axis=1).min() > 0.99
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16"):
        MiniLMEmbedder(precision="fp8")


def _chunks(n, contract="k1", prefix="clause"):
    return [
        {
            "chunk_id": f"{contract}-{i}",
            "contract_id": contract,
            "start": i * 10,
            "end": i * 10 + 9,
            "text": f"{prefix} {i} about {'payment' if i % 2 else 'termination'}",
        }
        for i in range(n)
    ]


class CountingEmbedder(HashingEmbedder):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def embed(self, texts):
        self.calls += len(texts)
        return super().embed(texts)


def test_sync_embeds_only_new_chunks_and_removes_stale(tmp_path):
    emb = CountingEmbedder()
    store = ChromaStore(make_client("embedded", str(tmp_path)), emb)
    first = store.sync(_chunks(6) + _chunks(3, "k2"))
    assert (first.total, first.added, emb.calls) == (9, 9, 9)
    again = store.sync(_chunks(6) + _chunks(3, "k2"))
    assert (again.total, again.added, again.removed, emb.calls) == (9, 0, 0, 9)
    changed = store.sync(_chunks(5) + _chunks(3, "k2") + _chunks(1, "k3"))
    assert (changed.total, changed.added, changed.removed, emb.calls) == (9, 1, 1, 10)


def test_search_is_filtered_to_the_contract_and_survives_reopening(tmp_path):
    emb = HashingEmbedder()
    ChromaStore(make_client("embedded", str(tmp_path)), emb).sync(_chunks(6) + _chunks(6, "k2", "payment payment"))
    reopened = ChromaStore(make_client("embedded", str(tmp_path)), emb)
    [hits] = reopened.search(emb.embed(["payment terms"]), ["k1"], k=3)
    assert len(hits) == 3 and {h["contract_id"] for h in hits} == {"k1"}
    assert all("payment" in reopened.collection().get(ids=[h["chunk_id"]])["documents"][0] for h in hits[:2])


def test_collection_never_uses_chromas_downloading_default(tmp_path):
    store = ChromaStore(make_client("embedded", str(tmp_path)), HashingEmbedder())
    ef = store.collection()._embedding_function
    assert isinstance(ef, ProjectEmbeddingFunction) and ef.embedder_name == "hashing-bow"
    assert ProjectEmbeddingFunction.build_from_config(ef.get_config()).embedder_name == "hashing-bow"


def test_unknown_chroma_mode_is_refused():
    with pytest.raises(ValueError, match="embedded' or 'http"):
        make_client("cloud")
