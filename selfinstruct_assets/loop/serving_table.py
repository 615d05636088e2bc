"""The `serving_model` table: every promoted adapter, the served one flagged, mirrored from `serving/` files.

    write_serving_table(home / "serving", duckdb_path())   # after `selfinstruct promote --to ...`

Dagster-free. The files under `serving/` are the truth (published by rename); the table is their copy for
SQL users, rewritten by the `serving_model` asset and by the CLI after a rollback.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import duckdb
import polars as pl

from .serving import current, history

SERVING_SCHEMA = {"entry_id": pl.Utf8, "method": pl.Utf8, "adapter_id": pl.Utf8, "path": pl.Utf8,
                  "cuad_match": pl.Float64, "judge_score": pl.Float64, "benchmark_run_id": pl.Utf8,
                  "promoted_at": pl.Utf8, "reason": pl.Utf8, "is_current": pl.Boolean}


def serving_table(root: Path) -> pl.DataFrame:
    now = (current(root) or {}).get("entry_id")
    rows = [{**{k: e.get(k) for k in SERVING_SCHEMA if k in e}, "cuad_match": (e.get("scores") or {}).get("cuad_match"),
             "judge_score": (e.get("scores") or {}).get("judge_score"), "is_current": e["entry_id"] == now}
            for e in history(root)]
    return pl.DataFrame(rows, schema=SERVING_SCHEMA)


def write_serving_table(root: Path, database: str, patience_s: float = 60.0) -> bool:
    """Replace table `serving_model` in `database`; False if a writer kept the file locked past `patience_s`."""
    frame = serving_table(root).to_arrow()  # noqa: F841  (read by name in the SQL below)
    deadline, attempt = time.monotonic() + patience_s, 0
    while True:
        try:
            with duckdb.connect(database) as conn:
                conn.execute("create or replace table serving_model as select * from frame")
            return True
        except duckdb.IOException:  # a run holds the single-writer lock
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(1.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
            attempt += 1
