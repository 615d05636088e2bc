"""The project's DuckDB file: read-only queries for people and scripts, and appends for history tables."""

import threading
import time
import unicodedata
from pathlib import Path

import duckdb
import duckdb as _duckdb  # append_rows' parameter is named duckdb (the Dagster resource's name)

from selfinstruct.core.duckdb_lock import DuckDBFileError, connect_reader, explain_io_error, is_disk_error, retry_locked
from selfinstruct.core.paths import duckdb_path


def append_rows(duckdb, name: str, frame) -> None:
    """Append a Polars frame to table `name` (created from the frame's schema the first time), so history stays.

    `duckdb` is anything with `get_connection()` (the Dagster DuckDB resource); columns are matched by name.
    Columns the frame adds (a newer release's metrics) are added to the table first, null in older rows, so
    a history table keeps its past runs when its schema grows. The new columns and rows are one transaction:
    a failed append (a full disk) leaves the table as it was.
    """
    append_tables(duckdb, {name: frame})


def append_tables(duckdb, frames: dict) -> None:
    """`append_rows` for several tables in one transaction: a run's scores and its answers land together or not
    at all (a full disk between them would leave scores without the answers they summarise)."""
    with duckdb.get_connection() as conn:
        conn.begin()
        try:
            for name, frame in frames.items():
                _append(conn, name, frame)
            conn.commit()
        except BaseException as exc:
            _rollback(conn)
            if is_disk_error(exc):
                raise DuckDBFileError(explain_io_error(exc, getattr(duckdb, "database", None))) from exc
            raise


def _append(conn, name: str, frame) -> None:
    new_rows = frame.to_arrow()  # noqa: F841  (read by name in the SQL below)
    conn.execute(f"create table if not exists {name} as select * from new_rows limit 0")
    have = {row[0] for row in conn.execute(f"describe {name}").fetchall()}
    types = {r[0]: r[1] for r in conn.execute("describe select * from new_rows").fetchall()}
    for column in [c for c in frame.columns if c not in have]:
        conn.execute(f'alter table {name} add column "{column}" {types[column]}')
    conn.execute(f"insert into {name} by name select * from new_rows")


def _rollback(conn) -> None:
    try:
        conn.rollback()
    except _duckdb.Error:
        pass  # a transaction DuckDB already aborted has nothing left to roll back


# A reader is stopped after this long (`selfinstruct query --timeout`): under the writers' patience, so a
# reader never makes a run fail (duckdb_lock.WRITER_PATIENCE_S).
DEFAULT_QUERY_TIMEOUT_S = 120.0


class QueryTimeout(Exception):
    """The query ran past its time limit and was interrupted."""


def _interruptible(conn, work, timeout_s: float | None):
    """`work(conn)` in a worker thread, so that Ctrl-C reaches this (main) thread at once and a time limit can
    be kept: either one interrupts DuckDB (`conn.interrupt()`), which stops the query within milliseconds."""
    outcome: dict = {}
    stopped = threading.Event()  # Ctrl-C before DuckDB started the query: never start it

    def target():
        try:
            if stopped.is_set():
                raise KeyboardInterrupt
            outcome["value"] = work(conn)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="selfinstruct-query", daemon=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.05)
            if deadline is not None and worker.is_alive() and time.monotonic() >= deadline:
                conn.interrupt()
                worker.join()
                raise QueryTimeout
    except KeyboardInterrupt:
        stopped.set()
        conn.interrupt()
        worker.join(5)
        if worker.is_alive():  # the query had not started when interrupt() came: stop it now that it runs
            conn.interrupt()
            worker.join(5)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class QueryError(RuntimeError):
    """A read-only query that failed; `locked` is True when a writer held the file past the patience."""

    def __init__(self, message: str, locked: bool = False):
        super().__init__(message)
        self.locked = locked


def query_readonly(
    sql: str,
    database: str | None = None,
    patience_s: float = 120.0,
    max_rows: int | None = None,
    external_access: bool = True,
    timeout_s: float | None = DEFAULT_QUERY_TIMEOUT_S,
) -> tuple[list[str], list[tuple]]:
    """Run `sql` on a read-only connection; a writer holding the file lock is waited out with backoff.

    Writers hold the lock only while one step reads or writes its tables (seconds), and DuckDB steps run
    one at a time (the instance's pool), so waiting up to `patience_s` means a reader does not fail. Any other
    IO error (a damaged file, a wrong path in the SQL) fails at once, naming the file and the fix.
    `max_rows`: fetch at most that many rows plus one, so a caller can tell that more exist without holding
    them all. `external_access=False` confines the SQL to the database itself: no other file is read, written
    or attached (what a person's ad-hoc query gets). The query is interrupted after `timeout_s` seconds
    (None: no limit) and at once on Ctrl-C (KeyboardInterrupt is raised).
    """
    path = database or duckdb_path()
    if not Path(path).exists():
        raise QueryError(f"{path} does not exist yet: run `make demo` (or materialise assets) first.")
    config = {} if external_access else {"enable_external_access": False}

    def work(conn) -> tuple[list[str], list[tuple]]:
        cur = conn.execute(sql)
        if cur.description is None:  # a statement without a result, such as SET
            return [], []
        rows = cur.fetchall() if max_rows is None else cur.fetchmany(max_rows + 1)
        return [d[0] for d in cur.description], rows

    def run() -> tuple[list[str], list[tuple]]:
        with connect_reader(path, config) as conn:
            return _interruptible(conn, work, timeout_s)

    try:
        return retry_locked(run, patience_s, database=path)
    except QueryTimeout:
        raise QueryError(
            f"query stopped after {timeout_s:g} s (--timeout {timeout_s:g}); narrow it (a where clause, a limit, "
            "fewer joins) or raise --timeout"
        ) from None
    except DuckDBFileError as exc:
        raise QueryError(str(exc)) from exc
    except duckdb.IOException as exc:  # retry_locked raises only a lock error that outlasted patience_s
        raise QueryError(f"{path} stayed locked by a writer for {patience_s:.0f} s: {exc}", locked=True) from exc
    except duckdb.PermissionException as exc:
        raise QueryError(
            f"query refused: {str(exc).split(chr(10))[0]}; `selfinstruct query` reads only the "
            f"tables of {path} (no other file is read, written or attached)"
        ) from exc
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from exc


# Bidirectional overrides reorder what a terminal shows; they are escaped like control characters.
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def _printable(text: str) -> str:
    """`text` safe for a terminal: newlines and tabs as spaces, other control characters (ANSI escapes'
    ESC included), line separators and bidi overrides written as escapes such as \\x1b."""
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(" ")
        elif ord(ch) in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            out.append(ascii(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out)


def format_table(columns: list[str], rows: list[tuple], max_width: int = 60, footer: str | None = None) -> str:
    """An aligned text table of `rows`, cells cut at `max_width`, ending in `footer` or a row count."""

    def cell(v) -> str:
        s = _printable(f"{v:.3f}" if isinstance(v, float) else str(v))
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    heads = [cell(c) for c in columns]
    cells = [[cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(heads)]
    line = lambda vals: " | ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    out = [line(heads), "-+-".join("-" * w for w in widths)] + [line(r) for r in cells]
    return "\n".join(out) + "\n" + (footer or f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
