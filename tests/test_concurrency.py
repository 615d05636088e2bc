"""Readers never fail with a lock error while a run writes the DuckDB file from another process."""

import os
import subprocess
import sys

import pytest
from procs import REPO

from selfinstruct.core.tables import query_readonly

WRITER = """
import dagster as dg
from resources.project import EmbedderResource
from selfinstruct_assets.constants import CORPUS, RETRIEVAL
from selfinstruct_assets.corpus.checks import CORPUS_CHECKS
from selfinstruct_assets.definitions import ASSETS, default_resources
from selfinstruct_assets.retrieval.checks import RETRIEVAL_CHECKS
CHECKS = CORPUS_CHECKS + RETRIEVAL_CHECKS
for size in (900, 1100):  # each pass rewrites every table and re-indexes changed chunks
    r = dg.materialize(ASSETS + CHECKS, resources={**default_resources(), "embedder": EmbedderResource(backend="hashing")},
                       selection=dg.AssetSelection.groups(CORPUS, RETRIEVAL),
                       run_config={"ops": {"cuad_corpus": {"config": {"uri": %r}},
                                           "retriever_model": {"config": {"enabled": False}},
                                           "contract_chunks": {"config": {"chunk_size": size, "chunk_overlap": 100}}}})
    assert r.success
    print("pass done", flush=True)
"""


@pytest.mark.slow
def test_queries_in_a_loop_while_a_run_writes(small_cuad, home):
    first = subprocess.run(
        [sys.executable, "-c", WRITER.replace("(900, 1000, 1100)", "(1000,)") % str(small_cuad)],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER % str(small_cuad)],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    counts = []
    while writer.poll() is None:
        _, rows = query_readonly("select count(*) from contract_chunks")  # raises QueryError on a lock failure
        counts.append(rows[0][0])
    out, err = writer.communicate()
    assert writer.returncode == 0 and out.count("pass done") == 2, err[-2000:]
    assert len(counts) >= 20 and all(c > 0 for c in counts)  # hundreds of reads in practice, none refused
    assert len(set(counts)) >= 2, "the readers should have seen the chunk count change between passes"
