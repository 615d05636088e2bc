"""Chroma collections of contract chunks: embedded PersistentClient by default, a Chroma server when configured.

`SELFINSTRUCT_CHROMA_URL=http://host:8000` (read when a client is made, i.e. when a step runs) sends the
default embedded mode to that server instead; an explicit `mode="http"` always wins. Dagster-free. Embeddings are computed by our own embedder and passed in; the collection also carries
an embedding function wrapping that embedder, so Chroma never falls back to its downloading default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from resources.embedders import Embedder
from selfinstruct.core import settings
from selfinstruct.core.services import ServiceUnavailable, check_http


@register_embedding_function
class ProjectEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma face of a project embedder (registered, so a persisted collection can name it)."""

    def __init__(self, embedder: Embedder | None = None, embedder_name: str = ""):
        self.embedder = embedder
        self.embedder_name = embedder.name if embedder is not None else embedder_name

    def __call__(self, input: Documents) -> Embeddings:
        if self.embedder is None:
            raise RuntimeError(f"collection embeds with {self.embedder_name!r}: open it through ChromaStore")
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "selfinstruct"

    def get_config(self) -> dict[str, Any]:
        return {"embedder_name": self.embedder_name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ProjectEmbeddingFunction:
        return ProjectEmbeddingFunction(embedder_name=config.get("embedder_name", ""))


CHROMA_URL_ENV = "SELFINSTRUCT_CHROMA_URL"


class ChromaServerError(RuntimeError):
    """The Chroma server did not answer; the message names it and says how to recover."""


@dataclass
class IndexStats:
    total: int
    added: int
    removed: int
    embed_seconds: float
    write_seconds: float


class ChromaStore:
    """One Chroma client; `collection_name` is suffixed with the embedder so vectors never mix."""

    def __init__(self, client, embedder: Embedder, collection_name: str = "contract_chunks"):
        self.client = client
        self.embedder = embedder
        self.collection_name = f"{collection_name}__{_slug(embedder.name)}"
        self.server = _server_of(client)

    def _lost(self, exc: Exception, doing: str) -> ChromaServerError:
        return ChromaServerError(
            f"Chroma server at {self.server} stopped answering while {doing} ({type(exc).__name__}: {exc}). "
            f"Start it again (`chroma run --path <its data folder> --port <port>`) or point {CHROMA_URL_ENV} at a "
            "live one, then re-run: chunks already written are kept and only the missing ones are embedded."
        )

    def collection(self):
        return self.client.get_or_create_collection(
            self.collection_name,
            embedding_function=ProjectEmbeddingFunction(self.embedder),
            metadata={"hnsw:space": "cosine"},
        )

    def existing_ids(self, where: dict | None = None) -> set[str]:
        col = self.collection()
        ids: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = col.get(where=where, include=[], limit=page, offset=offset)["ids"]
            ids.update(got)
            if len(got) < page:
                return ids
            offset += page

    def sync(self, chunks: list[dict], batch: int = 1024, scope: dict | None = None) -> IndexStats:
        """Upsert chunks whose id is new, delete ids no longer present; unchanged chunks embed nothing.

        `scope` (a Chroma `where` filter) limits deletion to the ids this call owns, e.g. one added
        contract's chunks, so syncing one part of the collection never removes another part.
        """
        try:
            col = self.collection()
            have = self.existing_ids()
        except Exception as exc:
            if self.server and _is_transport_error(exc):
                raise self._lost(exc, "listing the indexed chunks") from exc
            raise
        want = {c["chunk_id"] for c in chunks}
        new = [c for c in chunks if c["chunk_id"] not in have]
        owned = have if scope is None else self.existing_ids(scope)
        stale = sorted(owned - want)
        embed_s = write_s = 0.0
        for i in range(0, len(stale), 5000):
            col.delete(ids=stale[i : i + 5000])
        for i in range(0, len(new), batch):
            part = new[i : i + batch]
            t0 = time.perf_counter()
            vecs = self.embedder.embed([c["text"] for c in part])
            t1 = time.perf_counter()
            try:
                col.upsert(
                    ids=[c["chunk_id"] for c in part],
                    embeddings=vecs,
                    documents=[c["text"] for c in part],
                    metadatas=[
                        {"contract_id": c["contract_id"], "start": int(c["start"]), "end": int(c["end"])} for c in part
                    ],
                )
            except Exception as exc:
                if self.server and _is_transport_error(exc):
                    # each batch is one upsert: batches before this one are on the server and count as indexed
                    raise self._lost(exc, f"upserting chunks {i}-{i + len(part)} of {len(new)} new") from exc
                raise
            embed_s += t1 - t0
            write_s += time.perf_counter() - t1
        return IndexStats(
            total=col.count(), added=len(new), removed=len(stale), embed_seconds=embed_s, write_seconds=write_s
        )

    def embeddings(self, ids: list[str]) -> np.ndarray:
        """Stored vectors of `ids` (those present), so statistics over indexed text need no re-embedding."""
        if not ids:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        got = self.collection().get(ids=list(ids), include=["embeddings"])
        return np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)

    def search(self, query_vecs: np.ndarray, contract_ids: list[str], k: int) -> list[list[dict]]:
        """Top-k chunks per query, each query restricted to its own contract."""
        col = self.collection()
        out = []
        for vec, cid in zip(query_vecs, contract_ids):
            res = col.query(
                query_embeddings=[vec],
                n_results=k,
                where={"contract_id": cid},
                include=["metadatas", "distances", "documents"],
            )
            out.append(
                [
                    {"chunk_id": i, **m, "distance": d, "text": t}
                    for i, m, d, t in zip(res["ids"][0], res["metadatas"][0], res["distances"][0], res["documents"][0])
                ]
            )
        return out


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")[:40]


def _server_of(client) -> str:
    """`http://host:port` of a server client, "" for an embedded one."""
    conf = client.get_settings()
    if not conf.chroma_server_host:
        return ""
    scheme = "https" if conf.chroma_server_ssl_enabled else "http"
    return f"{scheme}://{conf.chroma_server_host}:{conf.chroma_server_http_port}"


def _is_transport_error(exc: Exception) -> bool:
    """Connection refused/reset or a timeout (httpx, which chromadb's HttpClient uses), not a bad request."""
    import httpx

    return isinstance(exc, (httpx.TransportError, ConnectionError))


def make_client(mode: str, path: str = "", host: str = "localhost", port: int = 8000, ssl: bool = False):
    import chromadb
    from chromadb.config import Settings

    client_settings = Settings(anonymized_telemetry=False)
    url = settings.get(CHROMA_URL_ENV)
    if mode == "embedded" and url:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        mode, host, ssl = "http", parts.hostname or "localhost", parts.scheme == "https"
        port = parts.port or (443 if ssl else 8000)
    if mode == "embedded":
        return chromadb.PersistentClient(path=path, settings=client_settings)
    if mode == "http":
        scheme = "https" if ssl else "http"
        fix = (
            f"start one (`chroma run --path DIR --host {host} --port {port}`), or unset {CHROMA_URL_ENV} / use "
            "mode='embedded' for the local index"
        )
        try:  # the client itself would wait for ever on a server that accepts and never answers
            check_http(f"{scheme}://{host}:{port}", CHROMA_URL_ENV, "the Chroma server", "/api/v2/heartbeat", fix=fix)
        except ServiceUnavailable as exc:
            raise ChromaServerError(str(exc)) from None
        try:
            return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=client_settings)
        except Exception as exc:  # the client checks the server's tenant when made
            raise ChromaServerError(
                f"no Chroma server answers at {scheme}://{host}:{port} ({type(exc).__name__}: {exc}); {fix}."
            ) from exc
    raise ValueError(f"chroma mode must be 'embedded' or 'http', got {mode!r}")
