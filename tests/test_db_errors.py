"""DuckDB IO errors: only a writer's lock is waited out; a corrupt file or a wrong path fails at once, named."""

import subprocess
import sys
import time

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from resources.project import InboxResource
from selfinstruct.core.duckdb_lock import DuckDBFileError, is_lock_error, retry_locked
from selfinstruct.core.tables import QueryError, query_readonly
from selfinstruct_assets.cli import main
from selfinstruct_assets.definitions import SENSORS

HOLD_LOCK = (
    "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
    "time.sleep(float(sys.argv[2]))"
)


def make_db(path) -> str:
    with duckdb.connect(str(path)) as conn:
        conn.execute("create table cuad_contracts as select 'c-1' as contract_id, 'train' as split, 'a' as sha256")
    return str(path)


def corrupt_db(path) -> str:
    path.write_bytes(b"this is not a duckdb file\n" * 400)
    return str(path)


def hold_lock(path: str, seconds: float) -> subprocess.Popen:
    # Another process: within one process DuckDB shares the open database instead of locking.
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, path, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def lock_error(path: str) -> duckdb.IOException:
    try:
        duckdb.connect(path, read_only=True)
    except duckdb.IOException as exc:
        return exc
    raise AssertionError("the file was not locked")


def test_is_lock_error_knows_duckdbs_lock_conflict_and_nothing_else(tmp_path):
    path = make_db(tmp_path / "a.duckdb")
    proc = hold_lock(path, 30)
    try:
        assert is_lock_error(lock_error(path))
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(duckdb.IOException) as corrupt:
        duckdb.connect(corrupt_db(tmp_path / "bad.duckdb"), read_only=True)
    assert not is_lock_error(corrupt.value)
    assert not is_lock_error(duckdb.IOException('IO Error: No files found that match the pattern "x.csv"'))
    assert not is_lock_error(ValueError("Could not set lock on file"))  # the text alone is not enough


def test_retry_locked_raises_other_io_errors_at_once_naming_the_file():
    calls = []

    def broken():
        calls.append(1)
        raise duckdb.IOException('IO Error: The file "/x/s.duckdb" exists, but it is not a valid DuckDB database file!')

    t0 = time.monotonic()
    with pytest.raises(DuckDBFileError) as exc:
        retry_locked(broken, patience_s=60, database="/x/s.duckdb")
    assert time.monotonic() - t0 < 1 and len(calls) == 1
    assert "/x/s.duckdb" in str(exc.value) and "move it aside" in str(exc.value)


def test_a_corrupt_database_fails_at_once_and_says_move_it_aside(tmp_path):
    path = corrupt_db(tmp_path / "selfinstruct.duckdb")
    t0 = time.monotonic()
    with pytest.raises(QueryError) as exc:
        query_readonly("select 1", database=path, patience_s=120)
    message = str(exc.value)
    assert time.monotonic() - t0 < 5
    assert path in message and "not a valid DuckDB database file" in message and "move it aside" in message
    assert "locked" not in message


def test_a_missing_path_in_read_csv_or_attach_fails_at_once_naming_the_path(tmp_path):
    path = make_db(tmp_path / "selfinstruct.duckdb")
    missing = str(tmp_path / "no-such-dir" / "rows.csv")
    for sql in (f"select * from read_csv('{missing}')", f"attach '{tmp_path / 'gone.duckdb'}' as gone"):
        t0 = time.monotonic()
        with pytest.raises(QueryError) as exc:
            query_readonly(sql, database=path, patience_s=120)
        assert time.monotonic() - t0 < 5, sql
        assert "locked" not in str(exc.value) and str(tmp_path) in str(exc.value), str(exc.value)


def test_a_writers_lock_is_still_waited_out_then_named(tmp_path):
    path = make_db(tmp_path / "selfinstruct.duckdb")
    proc = hold_lock(path, 1.5)
    try:
        assert query_readonly("select contract_id from cuad_contracts", database=path, patience_s=30)[1] == [("c-1",)]
    finally:
        proc.wait()
    proc = hold_lock(path, 30)
    try:
        with pytest.raises(QueryError, match="stayed locked by a writer"):
            query_readonly("select 1", database=path, patience_s=0.5)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("name", ["feedback_sensor", "new_contracts_sensor"])
def test_sensors_report_a_corrupt_database_in_the_tick_without_waiting(tmp_path, name):
    path = corrupt_db(tmp_path / "selfinstruct.duckdb")
    sensor = next(s for s in SENSORS if s.name == name)
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(
            instance=instance,
            resources={"inbox": InboxResource(root=str(tmp_path / "inbox")), "duckdb": DuckDBResource(database=path)},
        )
        t0 = time.monotonic()
        result = sensor(ctx)
    skip = result.skip_message if isinstance(result, dg.SkipReason) else result.skip_reason.skip_message
    assert time.monotonic() - t0 < 5
    assert path in skip and "move it aside" in skip and "locked" not in skip


def test_cli_query_on_a_corrupt_database_says_so_at_once(tmp_path, capsys):
    path = corrupt_db(tmp_path / "selfinstruct.duckdb")
    t0 = time.monotonic()
    assert main(["query", "select 1", "--database", path]) == 2
    err = capsys.readouterr().err
    assert time.monotonic() - t0 < 5 and path in err and "move it aside" in err and "Traceback" not in err
