"""The retriever every group shares: k chunks of one contract for a question, from the vector index.

    retrieve = make_retriever(embedder, chroma)
    passages = retrieve("What is the governing law?", contract_id, 3)
"""

from collections.abc import Callable

from resources.project import ChromaResource, EmbedderResource


def make_retriever(embedder: EmbedderResource, chroma: ChromaResource) -> Callable[[str, str, int], list[str]]:
    """A plain callable over the index, so DSPy programs and prompt builders need no Dagster resource."""
    emb = embedder.get()
    store = chroma.store(emb)

    def retrieve(question: str, contract_id: str, k: int) -> list[str]:
        [hits] = store.search(emb.embed([question]), [contract_id], k)
        return [h["text"] for h in hits]

    return retrieve
