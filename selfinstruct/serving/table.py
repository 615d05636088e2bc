"""The `serving_model` table: every promoted adapter, the served one flagged, mirrored from `serving/` files.

    write_serving_table(home / "serving", duckdb_path())   # after `selfinstruct promote --to ...`
    write_serving_table(home / "serving", duckdb_path(), store=store)   # a registry on S3 (see registry.py)

Dagster-free. The files under `serving/` are the truth (published by rename, or to S3); the table is their copy for
SQL users, rewritten by the `serving_model` asset and by the CLI after a rollback.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from selfinstruct.core.artifact_store import ArtifactStore
from selfinstruct.core.duckdb_lock import transaction
from selfinstruct.serving.registry import current, history

SERVING_SCHEMA = {
    "entry_id": pl.Utf8,
    "method": pl.Utf8,
    "adapter_id": pl.Utf8,
    "path": pl.Utf8,
    "cuad_match": pl.Float64,
    "judge_score": pl.Float64,
    "benchmark_run_id": pl.Utf8,
    "promoted_at": pl.Utf8,
    "reason": pl.Utf8,
    "is_current": pl.Boolean,
}


def serving_table(root: Path, store: ArtifactStore | None = None) -> pl.DataFrame:
    now = (current(root, store) or {}).get("entry_id")
    rows = [
        {
            **{k: e.get(k) for k in SERVING_SCHEMA if k in e},
            "cuad_match": (e.get("scores") or {}).get("cuad_match"),
            "judge_score": (e.get("scores") or {}).get("judge_score"),
            "is_current": e["entry_id"] == now,
        }
        for e in history(root, store)
    ]
    return pl.DataFrame(rows, schema=SERVING_SCHEMA)


def _replace_table(database: str, frame: pl.DataFrame, patience_s: float) -> None:
    arrow = frame.to_arrow()  # noqa: F841  (read by name in the SQL below)
    with transaction(database, patience_s=patience_s) as conn:
        conn.execute("create or replace table serving_model as select * from arrow")


def write_serving_table(
    root: Path, database: str, patience_s: float = 60.0, store: ArtifactStore | None = None
) -> bool:
    """Replace table `serving_model` in `database`; False if a writer kept the file locked past `patience_s`."""
    frame = serving_table(root, store)
    try:
        _replace_table(database, frame, patience_s)  # waits out readers and writers (duckdb_lock)
        return True
    except duckdb.IOException:  # a run held the single-writer lock all that time
        return False
