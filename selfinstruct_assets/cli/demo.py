"""`selfinstruct demo`: materialise every asset on the embedded defaults, then print a summary of the results.

    selfinstruct demo     # what `make demo` runs

The demo runs `main_job` with the quick profile beside this file (demo.yaml): the same assets as
`make benchmark`, at sizes that fit the run budget (benchmarks/RESULTS.md has the measured minutes and memory).
"""

import argparse
import resource
import sys
import time
from pathlib import Path

from selfinstruct.benchmark.headline import best_versus_base, headline_lines
from selfinstruct.core.tables import format_table, query_readonly

SUMMARY_SQL = {
    "retrieval_eval (recall on held-out contracts)": "pivot (select method, 'recall@' || k as k, round(recall, 3) as recall, n from retrieval_eval) "
    "on k using first(recall) group by method, n order by method",
    "rag_eval_summary (held-out questions)": "select method, n, round(judge_score, 3) as judge, judge_missing, round(cuad_match, 3) as cuad_match, "
    "round(token_f1, 3) as token_f1, round(exact_match, 3) as em, round(judge_cuad_agreement, 3) as agreement, "
    "round(mean_latency_s, 2) as latency_s from rag_eval_summary order by method",
    "benchmark_scores (held-out questions, latest run)": "select method, n, round(judge_score, 3) as judge, round(cuad_match, 3) as cuad_match, "
    "round(token_f1, 3) as token_f1, round(exact_match, 3) as em, round(improvement_pct, 1) as improvement_pct, "
    "round(cuad_ratio, 2) as cuad_ratio, round(mean_latency_s, 2) as latency_s from benchmark_scores "
    "where run_id = (select run_id from benchmark_scores order by created_at desc limit 1) order by method",
    "serving_model (the adapter to serve)": "select method, adapter_id, round(cuad_match, 3) as cuad_match, promoted_at, reason from serving_model "
    "where is_current",
    "drift_report (latest)": "select created_at, drifted, reasons from drift_report order by created_at desc limit 1",
    "corpus": "select (select count(*) from cuad_contracts) as contracts, "
    "(select count(*) from cuad_contracts where split = 'eval') as eval_contracts, "
    "(select count(*) from cuad_annotations where not is_impossible) as answerable, "
    "(select count(*) from cuad_rejects) as rejects, "
    "(select count(*) from contract_chunks) as chunks",
}

DEMO_PROFILE = Path(__file__).with_name("demo.yaml")


def demo_run_config(path: Path = DEMO_PROFILE) -> dict:
    """The quick profile as run config, checked against each asset's Config first (a typo fails here)."""
    from selfinstruct_assets.cli.profile import load_profile, validate
    from selfinstruct_assets.definitions import ASSETS

    profile = load_profile(path)
    validate(profile, ASSETS)
    return {"ops": dict(profile.get("ops") or {})}


def cmd_demo(args: argparse.Namespace) -> int:
    import dagster as dg

    from selfinstruct.core.services import ServiceUnavailable
    from selfinstruct_assets.definitions import defs
    from selfinstruct_assets.instance import check_instance

    try:  # before any work: a PostgreSQL instance or a Celery broker that is down is one sentence
        check_instance()
        definitions = defs()
    except ServiceUnavailable as exc:
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2
    job = definitions.resolve_job_def("main_job")
    run_config = demo_run_config()
    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
        steps = instance.get_run_step_stats(result.run_id)
        read = instance.get_latest_materialization_event(dg.AssetKey("cuad_contracts"))
    if not result.success:
        print("main_job failed; see the run in the Dagster UI (make ui) or the log above.", file=sys.stderr)
        return 1
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    metadata = read.asset_materialization.metadata if read and read.asset_materialization else {}
    kept, total = (metadata[k].value if k in metadata else None for k in ("contracts_kept", "contracts"))
    print(
        f"\nmain_job materialised every asset in {time.perf_counter() - t0:.0f} s (run {result.run_id}), "
        f"peak RSS {peak_gib:.2f} GiB\n{subset_line(run_config, kept, total)}\n"
    )
    rows = [
        (s.step_key, round(s.end_time - s.start_time, 1))
        for s in sorted(steps, key=lambda s: s.start_time or 0)
        if s.start_time and s.end_time and (s.end_time - s.start_time) >= 0.5
    ]
    print(f"steps of 0.5 s or more\n{format_table(['step', 'seconds'], rows)}\n")
    for title, sql in SUMMARY_SQL.items():
        columns, rows = query_readonly(sql)
        print(f"{title}\n{format_table(columns, rows)}\n")
    print("\n".join(summary_headline()))
    return 0


def subset_line(run_config: dict, kept: int | None, total: int | None) -> str:
    """Which contracts the run used: all of them, or the profile's documented sample and why."""
    limit = run_config["ops"].get("cuad_corpus", {}).get("config", {}).get("max_contracts", 0)
    if not limit:
        return f"Corpus: all {total if total is not None else 'the'} CUAD contracts."
    return (
        f"Corpus: {kept} of {total} CUAD contracts, the quick profile's sample (cuad_corpus.max_contracts {limit}: "
        "the first by contract_id, a hash of the file name, so a stable pseudo-random draw from both splits). "
        "It embeds about a third of the corpus to save the demo time; `make benchmark` uses every contract."
    )


def _records(sql: str) -> list[dict]:
    columns, rows = query_readonly(sql)
    return [dict(zip(columns, r)) for r in rows]


def summary_headline() -> list[str]:
    """The summary's last three lines: the best method vs the base model, recall@3 of the served retriever vs
    BM25, and where to look next."""
    answers = _records(
        "select method, question_id, contract_id, cuad_match from benchmark_answers "
        "where run_id = (select run_id from benchmark_answers order by created_at desc limit 1)"
    )
    recall = {r["method"]: r["recall"] for r in _records("select method, recall from retrieval_eval where k = 3")}
    served = "fine_tuned" if "fine_tuned" in recall else "hybrid"  # what retriever_for serves
    return headline_lines(best_versus_base(answers), recall, served)


def add_demo_parser(subparsers) -> None:
    d = subparsers.add_parser("demo", help="materialise every asset on the embedded defaults and print a summary")
    d.set_defaults(func=cmd_demo)
