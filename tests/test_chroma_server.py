"""vector_index and retrieval against a real `chroma run` on loopback, and the server going away mid-upsert.

The server is selected the way a deployment selects it, by SELFINSTRUCT_CHROMA_URL with the default
ChromaResource: the same ChromaStore code path as the embedded client, nothing mocked.
"""

import time

import dagster as dg
import duckdb
import pytest
from procs import free_port, log_tail, start, stop, wait_http

from resources.chroma_store import ChromaServerError, ChromaStore, make_client
from resources.embedders import HashingEmbedder
from resources.project import EmbedderResource
from selfinstruct_assets.definitions import ASSETS, default_resources


class ChromaServer:
    def __init__(self, data, log):
        self.data, self.log, self.port, self.proc = data, log, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = start(
            "chroma",
            ["run", "--path", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)],
            {"ANONYMIZED_TELEMETRY": "False", "PATH": "/usr/bin:/bin"},
            self.log,
        )
        wait_http(f"{self.url}/api/v2/heartbeat", self.proc, self.log, 60)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture
def server(tmp_path):
    s = ChromaServer(tmp_path / "chroma-server", tmp_path / "chroma.log")
    s.start()
    yield s
    s.stop()


class KillsServerAfter(HashingEmbedder):
    """Counts what it embeds; stops the server once `after` batches were embedded (mid-sync)."""

    def __init__(self, server=None, after: int = 0):
        super().__init__()
        self.server, self.after, self.batches, self.texts = server, after, 0, 0

    def embed(self, texts):
        self.batches += 1
        self.texts += len(texts)
        if self.server is not None and self.batches == self.after:
            self.server.stop()
        return super().embed(texts)


@pytest.mark.slow
def test_vector_index_and_retrieval_on_a_chroma_server(small_cuad, home, server, monkeypatch):
    monkeypatch.setenv("SELFINSTRUCT_CHROMA_URL", server.url)
    resources = {**default_resources(), "embedder": EmbedderResource(backend="hashing")}
    result = dg.materialize(
        ASSETS,
        resources=resources,
        selection=dg.AssetSelection.assets(
            "cuad_contracts", "cuad_annotations", "cuad_rejects", "contract_chunks", "vector_index", "retrieval_eval"
        ),
        run_config={"ops": {"cuad_corpus": {"config": {"uri": str(small_cuad)}}}},
    )
    assert result.success
    assert not (home / "chroma").exists(), "nothing may be written to the embedded index"
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        chunk_ids = {c for (c,) in conn.execute("select chunk_id from contract_chunks").fetchall()}
        recall = conn.execute("select max(recall) from retrieval_eval").fetchone()[0]
    store = ChromaStore(make_client("http", host="127.0.0.1", port=server.port), HashingEmbedder())
    assert store.server == server.url and store.existing_ids() == chunk_ids
    assert recall is not None and recall > 0  # retrieval read the server's vectors


@pytest.mark.slow
def test_server_gone_mid_upsert_loses_nothing_and_a_rerun_embeds_only_the_rest(server):
    chunks = [
        {
            "chunk_id": f"c{i:04d}",
            "contract_id": f"k{i % 3}",
            "start": i,
            "end": i + 10,
            "text": f"clause {i} governing law term {i * 7}",
        }
        for i in range(300)
    ]
    client = make_client("http", host="127.0.0.1", port=server.port)
    dying = KillsServerAfter(server, after=3)
    with pytest.raises(ChromaServerError) as err:
        ChromaStore(client, dying).sync(chunks, batch=50)
    message = str(err.value)
    assert server.url in message and "chroma run" in message and "re-run" in message
    assert "upserting chunks 100-150 of 300" in message

    server.start()  # same data folder and port
    rerun = KillsServerAfter()
    store = ChromaStore(make_client("http", host="127.0.0.1", port=server.port), rerun)
    kept = store.existing_ids()
    assert kept == {c["chunk_id"] for c in chunks[:100]}, "the batches written before the failure stay"
    t0 = time.perf_counter()
    stats = store.sync(chunks, batch=50)
    assert (stats.added, stats.total, stats.removed) == (200, 300, 0)
    assert rerun.texts == 200, "only chunk ids missing from the server are embedded"
    assert time.perf_counter() - t0 < 30, log_tail(server.log)
