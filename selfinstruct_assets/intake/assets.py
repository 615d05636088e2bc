"""Feedback and production queries read from their inboxes; malformed rows are quarantined with a reason.

Both logs are one JSON Lines inbox each, read whole on every materialisation into a table of valid rows and
a table of rejects; `inbox_log` builds that pair for either.
"""

from collections.abc import Callable

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from resources.project import InboxResource
from selfinstruct.core.known import read_known, splits
from selfinstruct.intake.feedback import read_feedback_inbox
from selfinstruct.intake.queries import read_query_inbox
from selfinstruct_assets.constants import DUCKDB_POOL, INTAKE

FEEDBACK_SCHEMA = {
    "event_id": pl.Utf8,
    "question": pl.Utf8,
    "answer": pl.Utf8,
    "contract_id": pl.Utf8,
    "score": pl.Float64,
    "comment": pl.Utf8,
    "source": pl.Utf8,
    "file": pl.Utf8,
    "line": pl.Int64,
    "split": pl.Utf8,
}
QUERY_SCHEMA = {
    "query_id": pl.Utf8,
    "question": pl.Utf8,
    "contract_id": pl.Utf8,
    "asked_at": pl.Datetime("us"),
    "answer": pl.Utf8,
    "latency_s": pl.Float64,
    "adapter": pl.Utf8,  # selfinstruct serve: the adapter id that answered, and its A/B arm
    "arm": pl.Utf8,
    "file": pl.Utf8,
    "line": pl.Int64,
    "split": pl.Utf8,
}
REJECT_SCHEMA = {"file": pl.Utf8, "line": pl.Int64, "reason": pl.Utf8, "raw": pl.Utf8}


def _known_splits(duckdb: DuckDBResource) -> dict[str, str]:
    with duckdb.get_connection() as conn:
        return splits(read_known(lambda sql: conn.execute(sql).fetchall()))


def inbox_log(
    name: str,
    rejects: str,
    inbox_name: str,
    read: Callable,
    schema: dict,
    described: tuple[str, str],
    extra: Callable[[list[dict]], dict] = lambda rows: {},
) -> dg.AssetsDefinition:
    """The multi-asset `name` (valid rows of inbox `inbox_name`, with their contract's split) and `rejects`;
    `read(inbox, contracts)` returns (rows, rejects), `described` the two tables' descriptions."""

    @dg.multi_asset(
        name=name,
        group_name=INTAKE,
        pool=DUCKDB_POOL,
        deps=["cuad_contracts"],
        outs={name: dg.AssetOut(description=described[0]), rejects: dg.AssetOut(description=described[1])},
        description=f"Reads every complete file of the {inbox_name} inbox; malformed rows are quarantined "
        "with a reason.",
    )
    def _log(inbox: InboxResource, duckdb: DuckDBResource):
        known = _known_splits(duckdb)
        source = inbox.get(inbox_name)
        rows, bad = read(source, known)
        rows = [{**r, "split": known[r["contract_id"]]} for r in rows]
        yield dg.Output(
            pl.DataFrame(rows, schema=schema),
            output_name=name,
            metadata={"dagster/row_count": len(rows), "rejects": len(bad), "inbox": source.location, **extra(rows)},
        )
        yield dg.Output(
            pl.DataFrame(bad, schema=REJECT_SCHEMA), output_name=rejects, metadata={"dagster/row_count": len(bad)}
        )

    return _log


human_feedback = inbox_log(
    "human_feedback",
    "feedback_rejects",
    "feedback",
    read_feedback_inbox,
    FEEDBACK_SCHEMA,
    (
        "Valid ratings from the feedback inbox (score normalised to 0-1).",
        "Feedback inbox lines that failed validation: file, line, reason.",
    ),
    extra=lambda rows: {"human": sum(r["source"] == "human" for r in rows)},
)
query_log = inbox_log(
    "query_log",
    "query_log_rejects",
    "queries",
    read_query_inbox,
    QUERY_SCHEMA,
    (
        "Production questions from the query inbox, with contract and time.",
        "Query inbox lines that failed validation: file, line, reason.",
    ),
)
