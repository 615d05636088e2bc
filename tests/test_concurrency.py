"""Readers never fail with a lock error while a run writes the DuckDB file from another process, and readers
never fail a writer: however the reads overlap, a writer gets in once the reads already running end."""

import os
import subprocess
import sys
import threading
import time

import duckdb
import pytest
from procs import REPO

from selfinstruct.core.duckdb_lock import is_lock_error, transaction
from selfinstruct.core.tables import query_readonly
from selfinstruct_assets.definitions import default_resources

# A reader that keeps the file open `hold` seconds per read (a UI page, a slow query), then reads again at once.
HOLDING_READER = """
import sys, time
from selfinstruct.core.duckdb_lock import connect_reader, retry_locked
path, hold, table = sys.argv[1], float(sys.argv[2]), sys.argv[3]
while True:
    conn = retry_locked(lambda: connect_reader(path), 600, path)
    conn.execute(f"select count(*) from {table}").fetchall()
    print("read", flush=True)
    time.sleep(hold)
    conn.close()
"""


def _overlapping_readers(db: str, table: str = "t", n: int = 2, hold: float = 0.4) -> list[subprocess.Popen]:
    """`n` reader processes started `hold / n` apart, so that one of them always holds the file."""
    readers = []
    for _ in range(n):
        readers.append(
            subprocess.Popen(
                [sys.executable, "-c", HOLDING_READER, db, str(hold), table],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
        readers[-1].stdout.readline()  # it holds the file now
        time.sleep(hold / n)
    return readers


def _within(seconds: float, action) -> None:
    """Run `action` in a thread; fail if it raises or has not returned after `seconds`."""
    outcome = {}

    def run():
        try:
            action()
            outcome["ok"] = True
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert "error" not in outcome, f"the writer failed: {outcome.get('error')!r}"
    assert outcome.get("ok"), f"the writer was still waiting after {seconds:.0f} s"


def test_readers_that_always_hold_the_file_never_starve_a_writer(tmp_path):
    db = str(tmp_path / "selfinstruct.duckdb")
    with duckdb.connect(db) as conn:
        conn.execute("create table t as select 1 as x")
    readers = _overlapping_readers(db)
    try:
        # Without the writer's lock, DuckDB refuses a writer while any reader holds the file, which is always.
        refused = 0
        for _ in range(5):
            try:
                duckdb.connect(db).close()
            except duckdb.IOException as exc:
                refused += is_lock_error(exc)
        assert refused >= 1, "the readers should hold the file"

        def write_through_the_resource():  # what assets and asset checks (index_matches_chunks) open
            with default_resources(database=db)["duckdb"].get_connection() as conn:
                conn.execute("insert into t values (2)")

        def write_through_the_io_manager_path():
            with transaction(db) as conn:
                conn.execute("insert into t values (3)")

        _within(60, write_through_the_resource)
        _within(60, write_through_the_io_manager_path)
        assert all(r.poll() is None for r in readers), "the readers go on reading after the writes"
    finally:
        for reader in readers:
            reader.kill()
            reader.wait()
    with duckdb.connect(db, read_only=True) as conn:
        assert conn.execute("select sum(x) from t").fetchone()[0] == 6


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
    """A run of the corpus and retrieval groups (its asset checks too, index_matches_chunks among them) while
    one loop of queries runs and two readers always hold the file: no gap is left for a writer to find by
    timing, so only the writer lock lets the run through, whatever the load on the machine."""
    first = subprocess.run(
        [sys.executable, "-c", WRITER.replace("(900, 1100)", "(1000,)") % str(small_cuad)],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    readers = _overlapping_readers(str(home / "selfinstruct.duckdb"), "contract_chunks")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER % str(small_cuad)],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    counts = []
    try:
        while writer.poll() is None:
            _, rows = query_readonly("select count(*) from contract_chunks")  # raises QueryError on a lock failure
            counts.append(rows[0][0])
    finally:
        for reader in readers:
            reader.kill()
            reader.wait()
    out, err = writer.communicate()
    assert writer.returncode == 0 and out.count("pass done") == 2, err[-2000:]
    assert len(counts) >= 20 and all(c > 0 for c in counts)  # hundreds of reads in practice, none refused
    assert len(set(counts)) >= 2, "the readers should have seen the chunk count change between passes"
