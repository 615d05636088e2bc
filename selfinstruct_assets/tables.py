"""The project's DuckDB file: read-only queries for people and scripts, and appends for history tables."""

from pathlib import Path

import duckdb

from selfinstruct_core.duckdb_lock import retry_locked
from selfinstruct_core.paths import duckdb_path


def append_rows(duckdb, name: str, frame) -> None:
    """Append a Polars frame to table `name` (created from the frame's schema the first time), so history stays.

    `duckdb` is anything with `get_connection()` (the Dagster DuckDB resource); columns are matched by name.
    """
    new_rows = frame.to_arrow()  # noqa: F841  (read by name in the SQL below)
    with duckdb.get_connection() as conn:
        conn.execute(f"create table if not exists {name} as select * from new_rows limit 0")
        conn.execute(f"insert into {name} by name select * from new_rows")


class QueryError(RuntimeError):
    pass


def query_readonly(sql: str, database: str | None = None, patience_s: float = 120.0) -> tuple[list[str], list[tuple]]:
    """Run `sql` on a read-only connection; a writer holding the file lock is waited out with backoff.

    Writers hold the lock only while one step reads or writes its tables (seconds), and DuckDB steps run
    one at a time (the instance's pool), so waiting up to `patience_s` means a reader does not fail.
    """
    path = database or duckdb_path()
    if not Path(path).exists():
        raise QueryError(f"{path} does not exist yet: run `make demo` (or materialise assets) first.")

    def run() -> tuple[list[str], list[tuple]]:
        with duckdb.connect(path, read_only=True) as conn:
            cur = conn.execute(sql)
            return [d[0] for d in cur.description], cur.fetchall()

    try:
        return retry_locked(run, patience_s)
    except duckdb.IOException as exc:  # a writer kept the lock past patience_s
        raise QueryError(f"{path} stayed locked by a writer for {patience_s:.0f} s: {exc}") from exc
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from exc


def format_table(columns: list[str], rows: list[tuple], max_width: int = 60) -> str:
    def cell(v) -> str:
        s = f"{v:.3f}" if isinstance(v, float) else str(v)
        s = s.replace("\n", " ")
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    cells = [[cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda vals: " | ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    out = [line(columns), "-+-".join("-" * w for w in widths)] + [line(r) for r in cells]
    return "\n".join(out) + f"\n({len(rows)} row{'s' if len(rows) != 1 else ''})"
