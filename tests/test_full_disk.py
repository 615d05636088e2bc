"""A full disk never loses what was stored: every write that fails on ENOSPC leaves the previous version whole.

The disk is a small tmpfs mounted for the test, which needs root (CI runs as root): without it the tests are
skipped, saying so. A write larger than the file system fails with ENOSPC every time, with no timing involved.
"""

import os
import subprocess
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from resources.duckdb_tables import DuckDBTablesIOManager
from selfinstruct.core.artifacts import publish_dir
from selfinstruct.core.duckdb_lock import DuckDBFileError
from selfinstruct.core.inbox import Inbox
from selfinstruct.core.tables import append_rows, append_tables

SIZE_MB = 4


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB file system at a fresh folder, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the tests as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(disk: Path, leave: int = 0) -> Path:
    """A file that takes the disk's free space but `leave` bytes; delete it to free the space again."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
            f.flush()
        except OSError:  # the last block: the disk is full to the byte
            pass
    return filler


def _big_frame(rows: int = 150_000) -> pl.DataFrame:
    """Rows of random text that take more than the whole disk in DuckDB (random hex does not compress)."""
    return pl.DataFrame({"id": list(range(rows)), "text": [uuid.uuid4().hex * 2 for _ in range(rows)]})


def _count(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]


class _Db:
    """The `get_connection()` face of the Dagster DuckDB resource, on one file."""

    def __init__(self, path: Path):
        self.database = str(path)

    def get_connection(self):
        return duckdb.connect(self.database)


def test_a_table_replaced_on_a_full_disk_keeps_its_previous_rows(small_disk):
    db = small_disk / "selfinstruct.duckdb"
    frames = {"frame": pl.DataFrame({"id": list(range(12)), "text": ["a contract"] * 12})}

    @dg.asset
    def cuad_contracts() -> pl.DataFrame:
        return frames["frame"]

    resources = {"io_manager": DuckDBTablesIOManager(database=str(db), schema="main")}
    assert dg.materialize([cuad_contracts], resources=resources).success
    assert _count(db, "cuad_contracts") == 12

    filler = _fill(small_disk, leave=256 * 1024)
    frames["frame"] = _big_frame()
    result = dg.materialize([cuad_contracts], resources=resources, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "No space left on device" in str(failure.message) + str(failure.cause)
    assert _count(db, "cuad_contracts") == 12  # the old version, whole, not 0 rows

    filler.unlink()  # space is there again: writes work
    frames["frame"] = pl.DataFrame({"id": [1, 2], "text": ["b", "c"]})
    assert dg.materialize([cuad_contracts], resources=resources).success
    assert _count(db, "cuad_contracts") == 2


def test_an_append_on_a_full_disk_leaves_the_history_table_as_it_was(small_disk):
    db = _Db(small_disk / "selfinstruct.duckdb")
    append_rows(db, "drift_report", pl.DataFrame({"id": [1, 2, 3], "text": ["x", "y", "z"]}))
    before = duckdb.connect(db.database, read_only=True)
    columns = [r[0] for r in before.execute("describe drift_report").fetchall()]
    before.close()

    grown = _big_frame().with_columns(pl.lit(0.5).alias("new_metric"))  # a newer release's column too
    with pytest.raises(DuckDBFileError, match="the disk is full .*No space left on device.*previous version"):
        append_rows(db, "drift_report", grown)

    with duckdb.connect(db.database, read_only=True) as conn:
        assert conn.execute("select count(*) from drift_report").fetchone()[0] == 3
        assert [r[0] for r in conn.execute("describe drift_report").fetchall()] == columns  # no half-done schema


def test_scores_and_answers_land_together_or_not_at_all(small_disk):
    db = _Db(small_disk / "selfinstruct.duckdb")
    small = pl.DataFrame({"id": [1], "text": ["x"]})
    append_tables(db, {"benchmark_scores": small, "benchmark_answers": small})
    with pytest.raises(DuckDBFileError, match="No space left on device"):
        append_tables(db, {"benchmark_scores": small, "benchmark_answers": _big_frame()})  # the second cannot fit
    with duckdb.connect(db.database, read_only=True) as conn:
        assert conn.execute("select count(*) from benchmark_scores").fetchone()[0] == 1  # not 2 without answers
        assert conn.execute("select count(*) from benchmark_answers").fetchone()[0] == 1


def test_an_inbox_file_rewritten_on_a_full_disk_keeps_its_old_bytes(small_disk):
    inbox = Inbox(str(small_disk / "feedback"))
    inbox.write("batch.jsonl", b'{"event_id": "e1"}\n')
    with pytest.raises(OSError) as failed:
        inbox.write("batch.jsonl", os.urandom((SIZE_MB + 1) * 2**20))
    assert failed.value.errno == 28  # ENOSPC
    assert inbox.read("batch.jsonl") == b'{"event_id": "e1"}\n'
    assert sorted(p.name for p in (small_disk / "feedback").iterdir()) == ["batch.jsonl"]  # no NAME.tmp left


def test_an_adapter_published_on_a_full_disk_keeps_the_previous_one(small_disk):
    final = small_disk / "adapters" / "sft"
    publish_dir(lambda tmp: (tmp / "adapter_model.safetensors").write_bytes(b"old weights"), final)

    def build(tmp: Path) -> None:
        (tmp / "adapter_model.safetensors").write_bytes(os.urandom((SIZE_MB + 1) * 2**20))

    with pytest.raises(OSError):
        publish_dir(build, final)
    assert (final / "adapter_model.safetensors").read_bytes() == b"old weights"
    assert [p.name for p in final.parent.iterdir()] == ["sft"]  # no .tmp-* folder left


def test_a_promotion_on_a_full_disk_keeps_the_served_entry(small_disk, tmp_path):
    from selfinstruct.serving import registry

    serving = small_disk / "serving"
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    entry = {
        "method": "sft",
        "adapter_id": "sft-1",
        "path": str(adapter),
        "scores": {"cuad_match": 0.4},
        "benchmark_run_id": "r1",
    }
    first = registry.promote(serving, entry, "first promotion")

    filler = _fill(small_disk)
    with pytest.raises(OSError):
        registry.promote(serving, {**entry, "adapter_id": "sft-2"}, "a reason " * 20_000)
    assert registry.current(serving)["entry_id"] == first["entry_id"]
    filler.unlink()
    assert [e["entry_id"] for e in registry.history(serving)] == [first["entry_id"]]
    second = registry.promote(serving, {**entry, "adapter_id": "sft-2"}, "second promotion")
    assert [e["entry_id"] for e in registry.history(serving)] == [first["entry_id"], second["entry_id"]]


def test_feedback_add_on_a_full_disk_says_so_in_a_sentence(small_disk, tmp_path, monkeypatch, capsys):
    from selfinstruct_assets.cli import main

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(home))
    monkeypatch.setenv("SELFINSTRUCT_INBOX", str(small_disk / "inbox"))
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:
        conn.execute("create table cuad_contracts as select 'c-train' as contract_id, 'train' as split, 'a' as sha256")
    (small_disk / "inbox" / "feedback").mkdir(parents=True)
    _fill(small_disk)
    argv = ["feedback", "add", "--question", "Who?", "--answer", "Acme", "--contract-id", "c-train"]
    code = main([*argv, "--score", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("selfinstruct: inbox ")
    assert "No space left on device" in err and "free space" in err.lower() and "SELFINSTRUCT_INBOX" in err
    assert [p.name for p in (small_disk / "inbox" / "feedback").iterdir()] == []  # no half file, no NAME.tmp


def test_promote_to_previous_on_a_full_disk_says_so_and_keeps_the_served_adapter(small_disk, monkeypatch, capsys):
    from selfinstruct.serving import registry
    from selfinstruct_assets.cli import main

    home = small_disk / "home"
    monkeypatch.setenv("SELFINSTRUCT_HOME", str(home))
    monkeypatch.delenv("SELFINSTRUCT_ARTIFACTS", raising=False)
    serving = home / "serving"
    entries = []
    for adapter_id in ("sft-aaaaaaaa", "sft-bbbbbbbb"):
        folder = serving / "adapters" / adapter_id
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{}")
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
        entry = {"method": "sft", "adapter_id": adapter_id, "path": str(folder), "scores": {"cuad_match": 0.4}}
        entries.append(registry.promote(serving, {**entry, "benchmark_run_id": "r1"}, "promoted"))
    history = (serving / "history.jsonl").read_bytes()
    filler = _fill(small_disk)
    code = main(["promote", "--to", "previous"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "No space left on device" in err and "still serves the same entry" in err and "df -h" in err
    filler.unlink()
    assert registry.current(serving)["entry_id"] == entries[1]["entry_id"]  # the served adapter did not move
    # History is appended first, so it may hold the attempt (never served); what it held before is intact.
    assert (serving / "history.jsonl").read_bytes().startswith(history)
    assert [e["entry_id"] for e in registry.history(serving)][:2] == [e["entry_id"] for e in entries]
