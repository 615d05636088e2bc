"""`selfinstruct`: run the demo job and query the results in DuckDB.

    selfinstruct demo                 # materialise every asset on the embedded defaults
    selfinstruct query "select * from retrieval_eval"
"""

import argparse
import sys
import time

from .tables import QueryError, format_table, query_readonly

SUMMARY_SQL = {
    "retrieval_eval (recall on held-out contracts)":
        "pivot (select method, 'recall@' || k as k, round(recall, 3) as recall, n from retrieval_eval) "
        "on k using first(recall) group by method, n order by method",
    "rag_eval_summary (held-out questions)":
        "select method, n, round(judge_score, 3) as judge, judge_missing, round(cuad_match, 3) as cuad_match, "
        "round(token_f1, 3) as token_f1, round(exact_match, 3) as em, round(judge_cuad_agreement, 3) as agreement, "
        "round(mean_latency_s, 2) as latency_s from rag_eval_summary order by method",
    "corpus": "select (select count(*) from cuad_contracts) as contracts, "
              "(select count(*) from cuad_contracts where split = 'eval') as eval_contracts, "
              "(select count(*) from cuad_annotations where not is_impossible) as answerable, "
              "(select count(*) from cuad_rejects) as rejects, "
              "(select count(*) from contract_chunks) as chunks",
}


def cmd_query(args: argparse.Namespace) -> int:
    columns, rows = query_readonly(args.sql, database=args.database)
    print(format_table(columns, rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import dagster as dg

    from .definitions import defs

    definitions = defs()
    job = definitions.resolve_job_def("main_job")
    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    if not result.success:
        print("main_job failed; see the run in the Dagster UI (make ui) or the log above.", file=sys.stderr)
        return 1
    print(f"\nmain_job materialised every asset in {time.perf_counter() - t0:.0f} s (run {result.run_id})\n")
    for title, sql in SUMMARY_SQL.items():
        columns, rows = query_readonly(sql)
        print(f"{title}\n{format_table(columns, rows)}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfinstruct", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("query", help="run read-only SQL against the project's DuckDB file")
    q.add_argument("sql")
    q.add_argument("--database", default=None, help="DuckDB file (default: $SELFINSTRUCT_HOME/selfinstruct.duckdb)")
    q.set_defaults(func=cmd_query)
    d = sub.add_parser("demo", help="materialise every asset on the embedded defaults and print a summary")
    d.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except QueryError as exc:
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2



if __name__ == "__main__":
    sys.exit(main())
