"""`selfinstruct`: run the demo job, query the results in DuckDB and add feedback to the inbox.

    selfinstruct demo                 # materialise every asset on the embedded defaults
    selfinstruct query "select * from retrieval_eval"
    selfinstruct feedback add --question Q --answer A --contract-id C --score 4 --scale 1-5
    selfinstruct feedback import ratings.jsonl
    selfinstruct promote --list       # served adapters, newest last; --to previous | METHOD | ADAPTER_ID rolls back
"""

import argparse
import sys

from selfinstruct_core.paths import duckdb_path, project_home

from ..tables import QueryError, format_table, query_readonly
from .demo import add_demo_parser
from .feedback import add_feedback_parser
from .promote import add_promote_parser


def cmd_query(args: argparse.Namespace) -> int:
    columns, rows = query_readonly(args.sql, database=args.database)
    print(format_table(columns, rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfinstruct", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("query", help="run read-only SQL against the project's DuckDB file")
    q.add_argument("sql")
    q.add_argument("--database", default=None, help="DuckDB file (default: $SELFINSTRUCT_HOME/selfinstruct.duckdb)")
    q.set_defaults(func=cmd_query)
    add_demo_parser(sub)
    add_feedback_parser(sub)
    add_promote_parser(sub, project_home, duckdb_path)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except QueryError as exc:
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2
