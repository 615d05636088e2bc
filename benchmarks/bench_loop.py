"""Continuous-loop benchmark with the real daemon (issue: continuous loop performance goals).

    .venv/bin/python benchmarks/bench_loop.py --home .selfinstruct --runs 3 --out benchmarks/results_loop.json
    .venv/bin/python benchmarks/bench_loop.py --home .selfinstruct --via-serve --rows 20   # issue 25 §4

Needs a home where `make demo` has run; works on a copy of it (adapters and tables change). Starts
`dagster-daemon` on the copy, then per run drops a feedback file of --rows valid ratings and measures:
  detection_s  file published -> the feedback_sensor's run created (the daemon ticks every 30 s);
  run_s        that run's own duration (human_feedback -> pairs -> DPO/ORPO -> benchmark -> gate);
  row_s        file published -> its benchmark_scores rows queryable.
Then drops one new contract in the contracts inbox and measures file -> its partition run finished, and
that run's duration. Ratios use the demo's own main_job run and vector_index step from the copied instance.

--via-serve: the loop as users drive it. `selfinstruct serve` starts on the copy too; --rows requests on
train-split contracts are answered by it and rated through its review page (tests/loop_serve.py, which
tests/test_loop_e2e.py drives on the tiny model), then:
  rating_to_row_s   the last rating saved -> the refresh recorded benchmark_scores (its rows written before);
  run_over_main     the refresh run's seconds / main_job's seconds;
  decision          the gate's row in promotion_decisions for that run (passed, candidate, served, reason);
  serve_swapped     after a promotion: whether serve named the new adapter within 5 min (and how soon).
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def wait_run(instance, tag: dict, after: float, timeout_s: float = 3600):
    import dagster as dg

    deadline = time.time() + timeout_s
    created = None
    while time.time() < deadline:
        for rec in instance.get_run_records(filters=dg.RunsFilter(tags=tag)):
            if rec.create_timestamp.timestamp() >= after:
                created = created or rec.create_timestamp.timestamp()
                if rec.dagster_run.is_finished:
                    return rec, created
        time.sleep(1)
    raise SystemExit(f"no finished run with {tag} within {timeout_s} s")


def run_seconds(instance, run_id: str) -> float:
    stats = instance.get_run_stats(run_id)
    return stats.end_time - stats.start_time


def main_run_costs(instance) -> dict:
    import dagster as dg

    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name="main_job", statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    if not runs:
        return {}
    steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(runs[0].run_id)}
    return {"main_job_s": run_seconds(instance, runs[0].run_id), "vector_index_s": steps.get("vector_index")}


def feedback_file(home: Path, rows: int) -> None:
    import duckdb

    from selfinstruct.core.inbox import inbox_for

    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        cands = conn.execute(
            f"select contract_id, question, answer from rag_responses order by random() limit {rows}"
        ).fetchall()
    lines = [
        json.dumps(
            {
                "event_id": uuid.uuid4().hex,
                "question": q,
                "answer": a,
                "contract_id": c,
                "score": 0.1,
                "comment": "benchmark rating",
            }
        )
        for c, q, a in cands
    ]
    inbox_for("feedback").write(f"bench-{uuid.uuid4().hex[:8]}.jsonl", ("\n".join(lines) + "\n").encode())


def contract_file(home: Path) -> None:
    import duckdb

    from selfinstruct.core.inbox import inbox_for

    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        title, text = conn.execute(
            "select title, text from cuad_contracts order by n_chars limit 1 offset 200"
        ).fetchone()
    tag = uuid.uuid4().hex[:6]
    inbox_for("contracts").write(f"{title} - copy {tag}.txt", f"COPY {tag}\n{text}".encode())


def via_files(instance, home: Path, runs: int, rows: int) -> dict:
    """Feedback files dropped in the inbox, then one new contract."""
    out: dict = {"feedback": [], "contract": None}
    for _ in range(runs):
        t0 = time.time()
        feedback_file(home, rows)
        rec, created = wait_run(instance, {"selfinstruct/trigger": "feedback"}, t0)
        row_s = time.time() - t0
        out["feedback"].append(
            {
                "detection_s": created - t0,
                "run_s": run_seconds(instance, rec.dagster_run.run_id),
                "row_s": row_s,
                "status": rec.dagster_run.status.value,
            }
        )
        print(json.dumps(out["feedback"][-1]), flush=True)
    t0 = time.time()
    contract_file(home)
    rec, created = wait_run(instance, {"selfinstruct/trigger": "new_contract"}, t0)
    out["contract"] = {
        "file_to_indexed_s": time.time() - t0,
        "detection_s": created - t0,
        "run_s": run_seconds(instance, rec.dagster_run.run_id),
        "status": rec.dagster_run.status.value,
    }
    print(json.dumps(out["contract"]), flush=True)
    return out


def via_serve(instance, home: Path, env: dict, logs: Path, rows: int) -> dict:
    """Requests answered and rated through `selfinstruct serve`, the refresh they trigger, the gate, the swap."""
    from loop_serve import ask_and_rate, decision_of, materialised_at, served_adapter, start_serve, wait_served
    from procs import free_port, stop

    from selfinstruct.core.artifacts import serving_root
    from selfinstruct.serving.registry import current

    database = str(home / "selfinstruct.duckdb")
    before = (current(serving_root(home)) or {}).get("adapter_id", "base")
    serve, url = start_serve(env, logs / "serve.log", free_port())
    try:
        t0 = time.time()
        got = ask_and_rate(url, database, rows)
        t_last = got["last_rating_at"]
        rec, created = wait_run(instance, {"selfinstruct/trigger": "feedback"}, t0)
        run = rec.dagster_run
        run_s, main_s = run_seconds(instance, run.run_id), main_run_costs(instance).get("main_job_s")
        bench_at = materialised_at(instance, run.run_id, "benchmark_scores")
        decision = decision_of(database, run.run_id) or {}
        out = {
            "rated_rows": got["rows"],
            "answer_latency_s": [r["latency_s"] for r in got["records"]],
            "shown_on_page": len(set(got["shown"]) & {r["request_id"] for r in got["records"]}),
            "detection_s": created - t_last,
            "rating_to_row_s": None if bench_at is None else bench_at - t_last,
            "run_s": run_s,
            "main_job_s": main_s,
            "run_over_main": run_s / main_s if main_s else None,
            "status": run.status.value,
            "decision": {
                k: decision.get(k)
                for k in ("passed", "candidate_method", "candidate_adapter_id", "served_adapter_id", "reason")
            },
            "served_before": before,
        }
        new = decision.get("candidate_adapter_id")
        if decision.get("passed") and new and new != before:
            waited = wait_served(url, new, 300)
            out.update(serve_swapped=waited is not None, swap_wait_s=waited)
        else:  # no promotion (or the served adapter again): serve must still name the one it served
            out.update(serve_swapped=None, serve_kept_old=served_adapter(url) == before)
    finally:
        stop(serve)
    print(json.dumps(out, default=str), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", required=True, help="a SELFINSTRUCT_HOME where make demo has run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=20, help="ratings per feedback file (the sensor's default N)")
    ap.add_argument(
        "--via-serve",
        action="store_true",
        help="requests and --rows ratings through `selfinstruct serve` and its review page (one refresh)",
    )
    ap.add_argument("--out", default=None, help="default: benchmarks/results_loop.json (_serve.json with --via-serve)")
    args = ap.parse_args()
    args.out = args.out or str(ROOT / "benchmarks" / f"results_loop{'_serve' if args.via_serve else ''}.json")
    import dagster as dg
    from procs import start, stop

    from selfinstruct_assets.instance import ensure_instance_yaml

    with tempfile.TemporaryDirectory(dir=Path(args.home).resolve().parent) as tmp:
        home = Path(tmp) / "home"
        shutil.copytree(args.home, home, ignore=shutil.ignore_patterns("*.tmp", ".tmp-*"))
        env = {
            **os.environ,
            "SELFINSTRUCT_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster"),
            "HF_HUB_OFFLINE": "1",
            "SELFINSTRUCT_FEEDBACK_MIN_ROWS": str(args.rows),
        }
        os.environ.update(env)
        ensure_instance_yaml()
        daemon = start("dagster-daemon", ["run", "-w", "workspace.yaml"], env, Path(tmp) / "daemon.log")
        try:
            time.sleep(45)  # the daemon's first ticks (cursors start at the files already there)
            with dg.DagsterInstance.get() as instance:
                out = main_run_costs(instance)
                if args.via_serve:
                    out.update(via_serve(instance, home, env, Path(tmp), args.rows))
                else:
                    out.update(via_files(instance, home, args.runs, args.rows))
        finally:
            stop(daemon)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    out.update(
        machine=f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        date=time.strftime("%Y-%m-%d"),
        commit=commit,
        rows=args.rows,
    )
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
