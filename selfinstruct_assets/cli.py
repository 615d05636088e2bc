"""`selfinstruct`: run the demo job, query the results in DuckDB and add feedback to the inbox.

    selfinstruct demo                 # materialise every asset on the embedded defaults
    selfinstruct query "select * from retrieval_eval"
    selfinstruct feedback add --question Q --answer A --contract-id C --score 4 --scale 1-5
    selfinstruct feedback import ratings.jsonl
    selfinstruct promote --list       # served adapters, newest last; --to previous | METHOD | ADAPTER_ID rolls back
"""

import argparse
import json
import resource
import sys
import time
import uuid
from pathlib import Path

from resources.inbox import inbox_for
from resources.paths import duckdb_path, project_home

from .loop.feedback import (FeedbackError, parse_feedback_line, read_feedback_file, read_feedback_inbox,
                                write_feedback_file)
from .loop.known import read_known, splits
from .loop.serving import add_promote_parser
from .loop.serving_table import write_serving_table
from .tables import QueryError, format_table, query_readonly

SUMMARY_SQL = {
    "retrieval_eval (recall on held-out contracts)":
        "pivot (select method, 'recall@' || k as k, round(recall, 3) as recall, n from retrieval_eval) "
        "on k using first(recall) group by method, n order by method",
    "rag_eval_summary (held-out questions)":
        "select method, n, round(judge_score, 3) as judge, judge_missing, round(cuad_match, 3) as cuad_match, "
        "round(token_f1, 3) as token_f1, round(exact_match, 3) as em, round(judge_cuad_agreement, 3) as agreement, "
        "round(mean_latency_s, 2) as latency_s from rag_eval_summary order by method",
    "benchmark_scores (held-out questions, latest run)":
        "select method, n, round(judge_score, 3) as judge, round(cuad_match, 3) as cuad_match, "
        "round(token_f1, 3) as token_f1, round(exact_match, 3) as em, round(improvement_pct, 1) as improvement_pct, "
        "round(cuad_ratio, 2) as cuad_ratio, round(mean_latency_s, 2) as latency_s from benchmark_scores "
        "where run_id = (select run_id from benchmark_scores order by created_at desc limit 1) order by method",
    "serving_model (the adapter to serve)":
        "select method, adapter_id, round(cuad_match, 3) as cuad_match, promoted_at, reason from serving_model "
        "where is_current",
    "drift_report (latest)": "select created_at, drifted, reasons from drift_report order by created_at desc limit 1",
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
        steps = instance.get_run_step_stats(result.run_id)
    if not result.success:
        print("main_job failed; see the run in the Dagster UI (make ui) or the log above.", file=sys.stderr)
        return 1
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"\nmain_job materialised every asset in {time.perf_counter() - t0:.0f} s (run {result.run_id}), "
          f"peak RSS {peak_gib:.2f} GiB\n")
    rows = [(s.step_key, round(s.end_time - s.start_time, 1)) for s in sorted(steps, key=lambda s: s.start_time or 0)
            if s.start_time and s.end_time and (s.end_time - s.start_time) >= 0.5]
    print(f"steps of 0.5 s or more\n{format_table(['step', 'seconds'], rows)}\n")
    for title, sql in SUMMARY_SQL.items():
        columns, rows = query_readonly(sql)
        print(f"{title}\n{format_table(columns, rows)}\n")
    return 0


def known_contracts() -> dict[str, str]:
    """contract_id -> split of CUAD's and added contracts, read-only; QueryError naming `make demo` when missing."""
    missing = QueryError(f"no cuad_contracts table in {duckdb_path()} yet; feedback must name a contract_id "
                         "from it: run `make demo` first.")
    if not Path(duckdb_path()).exists():
        raise missing
    known = splits(read_known(lambda sql: query_readonly(sql)[1]))
    if not known:
        raise missing
    return known


def _inbox_event_ids(contracts: dict[str, str]) -> list[str]:
    # Rows the inbox already holds: writing their event ids again would only produce rejects later.
    return [r["event_id"] for r in read_feedback_inbox(inbox_for("feedback"), contracts)[0]]


def cmd_feedback_add(args: argparse.Namespace) -> int:
    contracts = known_contracts()
    raw = {"event_id": args.event_id or uuid.uuid4().hex, "question": args.question, "answer": args.answer,
           "contract_id": args.contract_id, "score": args.score, "comment": args.comment, "source": args.source}
    if args.scale:
        raw["scale"] = args.scale
    try:
        row = parse_feedback_line(json.dumps(raw), contracts)
        if row["event_id"] in _inbox_event_ids(contracts):
            raise FeedbackError(f"duplicate event_id {row['event_id']!r}: the inbox already holds it")
    except FeedbackError as exc:
        print(f"selfinstruct: feedback rejected: {exc}", file=sys.stderr)
        return 1
    print(write_feedback_file(inbox_for("feedback"), [row]))
    return 0


def cmd_feedback_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"selfinstruct: {path} is not a file", file=sys.stderr)
        return 2
    contracts = known_contracts()
    rows, rejects = read_feedback_file(path, contracts, _inbox_event_ids(contracts))
    written = write_feedback_file(inbox_for("feedback"), rows) if rows else None
    print(f"{path}: {len(rows)} valid row(s), {len(rejects)} rejected")
    for r in rejects:
        print(f"  line {r['line']}: {r['reason']}")
    print(f"wrote {written}" if written else "nothing written")
    return 0 if rows else 1


def _add_feedback_parser(sub) -> None:
    fb = sub.add_parser("feedback", help="add scored answers to the feedback inbox "
                                         "($SELFINSTRUCT_INBOX/feedback, default $SELFINSTRUCT_HOME/inbox/feedback)")
    fsub = fb.add_subparsers(dest="feedback_command", required=True)
    add = fsub.add_parser("add", help="validate one rating and write it to the inbox")
    add.add_argument("--question", required=True)
    add.add_argument("--answer", required=True)
    add.add_argument("--contract-id", required=True, help="a contract_id from cuad_contracts")
    add.add_argument("--score", required=True, type=float, help="0-1, or 1-5 (see --scale)")
    add.add_argument("--scale", choices=("0-1", "1-5"), default=None,
                     help="the score's scale; without it 0-1 is read as 0-1 and (1, 5] as 1-5")
    add.add_argument("--comment", default="")
    add.add_argument("--source", choices=("human", "ai"), default="human")
    add.add_argument("--event-id", default=None, help="unique id of this rating (default: a new uuid4 hex)")
    add.set_defaults(func=cmd_feedback_add)
    imp = fsub.add_parser("import", help="validate every line of a JSON Lines file; write the valid rows to the inbox")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_feedback_import)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfinstruct", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("query", help="run read-only SQL against the project's DuckDB file")
    q.add_argument("sql")
    q.add_argument("--database", default=None, help="DuckDB file (default: $SELFINSTRUCT_HOME/selfinstruct.duckdb)")
    q.set_defaults(func=cmd_query)
    d = sub.add_parser("demo", help="materialise every asset on the embedded defaults and print a summary")
    d.set_defaults(func=cmd_demo)
    _add_feedback_parser(sub)
    add_promote_parser(sub, project_home)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        if args.command == "promote" and args.to and code == 0 and Path(duckdb_path()).exists():
            # current.json moved: bring the SQL view of it along (the files stay the truth if this waits out)
            if not write_serving_table(project_home() / "serving", duckdb_path()):
                print("selfinstruct: the DuckDB file stayed locked; serving_model is refreshed at its next "
                      "materialisation (serving/current.json is already updated)", file=sys.stderr)
        return code
    except QueryError as exc:
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2



if __name__ == "__main__":
    sys.exit(main())
