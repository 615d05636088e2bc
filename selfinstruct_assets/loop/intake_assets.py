"""Feedback and production queries read from their inboxes; malformed rows are quarantined with a reason."""

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from resources.project import InboxResource

from ..constants import DUCKDB_POOL, LOOP
from .feedback import read_feedback_inbox
from .known import read_known, splits
from .queries import read_query_inbox

FEEDBACK_SCHEMA = {"event_id": pl.Utf8, "question": pl.Utf8, "answer": pl.Utf8, "contract_id": pl.Utf8,
                   "score": pl.Float64, "comment": pl.Utf8, "source": pl.Utf8, "file": pl.Utf8, "line": pl.Int64,
                   "split": pl.Utf8}
QUERY_SCHEMA = {"query_id": pl.Utf8, "question": pl.Utf8, "contract_id": pl.Utf8, "asked_at": pl.Datetime("us"),
                "answer": pl.Utf8, "latency_s": pl.Float64, "file": pl.Utf8, "line": pl.Int64, "split": pl.Utf8}
REJECT_SCHEMA = {"file": pl.Utf8, "line": pl.Int64, "reason": pl.Utf8, "raw": pl.Utf8}


def _known_splits(duckdb: DuckDBResource) -> dict[str, str]:
    with duckdb.get_connection() as conn:
        return splits(read_known(lambda sql: conn.execute(sql).fetchall()))


@dg.multi_asset(group_name=LOOP, pool=DUCKDB_POOL, deps=["cuad_contracts"], outs={
    "human_feedback": dg.AssetOut(description="Valid ratings from the feedback inbox (score normalised to 0-1)."),
    "feedback_rejects": dg.AssetOut(description="Feedback inbox lines that failed validation: file, line, reason."),
})
def human_feedback(inbox: InboxResource, duckdb: DuckDBResource):
    """Reads every complete file of the feedback inbox; malformed rows are quarantined with a reason."""
    known = _known_splits(duckdb)
    source = inbox.get("feedback")
    rows, rejects = read_feedback_inbox(source, known)
    rows = [{**r, "split": known[r["contract_id"]]} for r in rows]
    yield dg.Output(pl.DataFrame(rows, schema=FEEDBACK_SCHEMA), output_name="human_feedback",
                    metadata={"dagster/row_count": len(rows), "rejects": len(rejects), "inbox": source.location,
                              "human": sum(r["source"] == "human" for r in rows)})
    yield dg.Output(pl.DataFrame(rejects, schema=REJECT_SCHEMA), output_name="feedback_rejects",
                    metadata={"dagster/row_count": len(rejects)})


@dg.multi_asset(group_name=LOOP, pool=DUCKDB_POOL, deps=["cuad_contracts"], outs={
    "query_log": dg.AssetOut(description="Production questions from the query inbox, with contract and time."),
    "query_log_rejects": dg.AssetOut(description="Query inbox lines that failed validation: file, line, reason."),
})
def query_log(inbox: InboxResource, duckdb: DuckDBResource):
    """Reads every complete file of the query inbox; malformed rows are quarantined with a reason."""
    known = _known_splits(duckdb)
    source = inbox.get("queries")
    rows, rejects = read_query_inbox(source, known)
    rows = [{**r, "split": known[r["contract_id"]]} for r in rows]
    yield dg.Output(pl.DataFrame(rows, schema=QUERY_SCHEMA), output_name="query_log",
                    metadata={"dagster/row_count": len(rows), "rejects": len(rejects), "inbox": source.location})
    yield dg.Output(pl.DataFrame(rejects, schema=REJECT_SCHEMA), output_name="query_log_rejects",
                    metadata={"dagster/row_count": len(rejects)})
