"""`selfinstruct query`: the database's own tables only, a row cap, and cells that cannot drive the terminal."""

import signal
import subprocess
import sys
import time

import duckdb
import pytest
from procs import REPO

from selfinstruct_assets.cli import main
from selfinstruct_assets.cli.demo import SUMMARY_SQL


@pytest.fixture
def db(tmp_path) -> str:
    path = str(tmp_path / "selfinstruct.duckdb")
    with duckdb.connect(path) as conn:
        conn.execute(
            "create table cuad_contracts as select 'c-' || range as contract_id, "
            "case when range % 5 = 0 then 'eval' else 'train' end as split from range(5000)"
        )
        conn.execute("create table notes (note varchar)")
        conn.executemany(
            "insert into notes values (?)",
            [["\x1b[2J\x1b[31mred\x1b[0m"], ["bell\x07 cr\r end"], ["rtl \u202egnp.exe"], ["line\nbreak"]],
        )
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["query", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "sql",
    ["select * from read_text('/etc/passwd')", "select * from read_csv('/etc/passwd')", "select * from glob('/etc/*')"],
)
def test_query_reads_no_file_outside_the_database(db, capsys, sql):
    code, out, err = run(capsys, sql, "--database", db)
    assert code == 2 and "root:" not in out and "query refused" in err and "Traceback" not in err


def test_query_writes_and_attaches_nothing(db, tmp_path, capsys):
    target = tmp_path / "leak.csv"
    code, _, err = run(capsys, f"copy (select * from cuad_contracts) to '{target}'", "--database", db)
    assert code == 2 and not target.exists() and "query refused" in err
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    code, _, err = run(capsys, f"attach '{other}' as other", "--database", db)
    assert code == 2 and "query refused" in err


def test_the_projects_own_queries_still_work(db, capsys):
    code, out, _ = run(
        capsys,
        "pivot (select split, count(*) as n from cuad_contracts group by split) on split using first(n)",
        "--database",
        db,
    )
    assert code == 0 and "1000" in out and "4000" in out
    code, out, _ = run(
        capsys, "select strftime(now(), '%Y') > '2000' as ok, now()::timestamptz is not null as tz", "--database", db
    )
    assert code == 0 and "True" in out
    # demo's summaries parse and bind against the restricted connection (a missing table is the only error)
    for sql in SUMMARY_SQL.values():
        code, _, err = run(capsys, sql, "--database", db)
        assert code == 0 or "does not exist" in err, err


def test_rows_are_capped_by_default_and_the_cap_can_be_lifted(db, capsys):
    code, out, _ = run(capsys, "select contract_id from cuad_contracts order by contract_id", "--database", db)
    lines = out.strip().split("\n")
    assert code == 0 and len(lines) == 2 + 1000 + 1
    assert lines[-1] == "(showing 1,000 of more rows; --max-rows N or --all to lift)"
    code, out, _ = run(capsys, "select * from cuad_contracts", "--database", db, "--max-rows", "10")
    assert out.strip().split("\n")[-1].startswith("(showing 10 of more rows") and len(out.strip().split("\n")) == 13
    code, out, _ = run(capsys, "select * from cuad_contracts", "--database", db, "--all")
    assert out.strip().split("\n")[-1] == "(5000 rows)"
    code, out, _ = run(capsys, "select * from cuad_contracts limit 1000", "--database", db)
    assert out.strip().split("\n")[-1] == "(1000 rows)"  # exactly the cap: nothing was left out


def test_a_huge_result_is_not_fetched_whole(db, capsys):
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    code, out, _ = run(capsys, "select range as i, 'x' || range as s from range(5000000)", "--database", db)
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert code == 0 and "(showing 1,000 of more rows" in out
    assert time.monotonic() - t0 < 20 and grew_mib < 200


def test_control_characters_and_ansi_escapes_are_printed_escaped(db, capsys):
    code, out, _ = run(capsys, 'select note as "n\x1b[1m" from notes', "--database", db)
    assert code == 0
    assert not any(ch in out for ch in "\x1b\x07\r\u202e")
    assert "\\x1b[31mred\\x1b[0m" in out and "bell\\x07 cr\\r end" in out and "\\u202egnp.exe" in out
    assert "line break" in out  # newlines keep the table one row per line


RUNAWAY = "select count(*) from range(1000000) a, range(1000000) b where a.range + b.range = -1"


def test_a_runaway_query_stops_at_its_timeout_with_a_sentence(db, capsys):
    started = time.monotonic()
    code, out, err = run(capsys, "--database", db, "--timeout", "1", RUNAWAY)
    assert time.monotonic() - started < 15
    assert code == 2 and out == ""
    assert "query stopped after 1 s (--timeout 1)" in err and "raise --timeout" in err


def test_the_query_timeout_has_a_default_below_the_writers_patience(capsys):
    from selfinstruct.core.duckdb_lock import WRITER_PATIENCE_S
    from selfinstruct.core.tables import DEFAULT_QUERY_TIMEOUT_S

    with pytest.raises(SystemExit):
        main(["query", "--help"])
    assert "--timeout SECONDS" in capsys.readouterr().out
    assert DEFAULT_QUERY_TIMEOUT_S == 120 < WRITER_PATIENCE_S  # a reader never outlasts a writer's wait


def test_ctrl_c_stops_a_running_query_at_once(db):
    cli = [sys.executable, "-m", "selfinstruct_assets.cli", "query", "--database", db, "--timeout", "600", RUNAWAY]
    # A person's Ctrl-C: SIGINT at its default in the child even when this test runs in a background job (where
    # the shell ignores SIGINT and children inherit that, so Python would never see it).
    proc = subprocess.Popen(
        cli,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        time.sleep(6)  # imported and connecting or running the query (the interrupt must stop either)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # before: still running 60 s after SIGINT; now well under 1 s
    finally:
        proc.kill()
    assert proc.returncode == 130 and "selfinstruct: query interrupted" in err and "Traceback" not in err
