"""`selfinstruct`: run the demo job, query the results in DuckDB and add feedback to the inbox.

selfinstruct demo                 # materialise every asset on the embedded defaults
selfinstruct query "select * from retrieval_eval"
selfinstruct feedback add --question Q --answer A --contract-id C --score 4 --scale 1-5
selfinstruct feedback import ratings.jsonl
selfinstruct promote --list       # served adapters, newest last; --to previous | METHOD | ADAPTER_ID rolls back
selfinstruct serve                # the served adapter over HTTP (OpenAI-compatible) and the review page
selfinstruct benchmark benchmarks/benchmark.yaml   # the resumable benchmark profile (what `make benchmark` runs)
selfinstruct instance             # the Dagster instance under DAGSTER_HOME (--postgres for PostgreSQL)
"""

import argparse
import sys

from selfinstruct.core.inbox_types import InboxUnavailable
from selfinstruct.core.paths import duckdb_path, project_home
from selfinstruct.core.services import ServiceUnavailable
from selfinstruct.core.settings import SettingsError
from selfinstruct.core.tables import DEFAULT_QUERY_TIMEOUT_S, QueryError, format_table, query_readonly
from selfinstruct_assets.cli.demo import add_demo_parser
from selfinstruct_assets.cli.feedback import add_feedback_parser
from selfinstruct_assets.cli.promote import add_promote_parser
from selfinstruct_assets.cli.runners import add_runner_parsers
from selfinstruct_assets.cli.serve import add_serve_parser

DEFAULT_MAX_ROWS = 1000


def cmd_query(args: argparse.Namespace) -> int:
    # A person's ad-hoc SQL sees the project's tables only (no file read, written or attached), and at most
    # max_rows + 1 rows are fetched, so a runaway select costs a page of output, not the machine's memory.
    cap = None if args.all else args.max_rows
    try:
        columns, rows = query_readonly(
            args.sql, database=args.database, max_rows=cap, external_access=False, timeout_s=args.timeout
        )
    except KeyboardInterrupt:  # DuckDB was interrupted at once; no traceback for a person's Ctrl-C
        print("selfinstruct: query interrupted", file=sys.stderr)
        return 130
    more = cap is not None and len(rows) > cap
    footer = f"(showing {cap:,} of more rows; --max-rows N or --all to lift)" if more else None
    print(format_table(columns, rows[:cap] if more else rows, footer=footer))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--max-rows must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--timeout must be a positive, finite number of seconds, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfinstruct", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("query", help="run read-only SQL against the project's DuckDB file (its tables only)")
    q.add_argument("sql")
    q.add_argument("--database", default=None, help="DuckDB file (default: $SELFINSTRUCT_HOME/selfinstruct.duckdb)")
    cap = q.add_mutually_exclusive_group()
    cap.add_argument(
        "--max-rows",
        type=_positive,
        default=DEFAULT_MAX_ROWS,
        help=f"print at most this many rows (default {DEFAULT_MAX_ROWS:,})",
    )
    cap.add_argument("--all", action="store_true", help="print every row")
    q.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_QUERY_TIMEOUT_S,
        metavar="SECONDS",
        help=f"stop the query after this many seconds (default {DEFAULT_QUERY_TIMEOUT_S:g}); Ctrl-C stops it at once",
    )
    q.set_defaults(func=cmd_query)
    add_demo_parser(sub)
    add_feedback_parser(sub)
    add_promote_parser(sub, project_home, duckdb_path)
    add_serve_parser(sub)
    add_runner_parsers(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (QueryError, SettingsError, InboxUnavailable, ServiceUnavailable) as exc:
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2
