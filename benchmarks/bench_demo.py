"""`make demo` timings (issue: fine-tuning performance goals): wall time, peak RSS and seconds per asset.

    .venv/bin/python benchmarks/bench_demo.py --runs 2 --harvest .selfinstruct --out benchmarks/results_demo.json

Each run is `selfinstruct demo` in a fresh SELFINSTRUCT_HOME (nothing cached: the index is embedded and
every LM call generated). `--harvest HOME` adds a run that `make demo` already made in HOME, read from its
Dagster instance. Per step: the median over runs of the step's seconds; the latest benchmark table is kept.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READ_RUN = """
import json, dagster as dg, duckdb
with dg.DagsterInstance.get() as instance:
    [run] = instance.get_runs(filters=dg.RunsFilter(job_name="main_job"), limit=1)
    stats = instance.get_run_stats(run.run_id)
    steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run.run_id)
             if s.start_time and s.end_time}
with duckdb.connect(%r, read_only=True) as conn:
    bench = conn.execute("select method, n, judge_score, cuad_match, token_f1, exact_match, improvement_pct, "
                         "cuad_ratio, mean_latency_s from benchmark_scores where run_id = ? order by method",
                         [run.run_id]).fetchall()
print(json.dumps({"run_id": run.run_id, "status": run.status.value, "run_s": stats.end_time - stats.start_time,
                  "steps": steps, "benchmark": bench}))
"""


def read_run(home: Path) -> dict:
    env = {**os.environ, "SELFINSTRUCT_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    out = subprocess.run([sys.executable, "-c", READ_RUN % str(home / "selfinstruct.duckdb")], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_run(tmp: Path) -> dict:
    home = tmp / "home"
    env = {**os.environ, "SELFINSTRUCT_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "selfinstruct_assets.instance"], env=env, check=True, capture_output=True)
    t0 = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "selfinstruct"), "demo"], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"selfinstruct demo failed:\n{proc.stderr[-4000:]}")
    rss = re.search(r"peak RSS ([\d.]+) GiB", proc.stdout)
    return {**read_run(home), "wall_s": wall, "peak_rss_gib": float(rss.group(1)) if rss else None,
            "summary": proc.stdout[proc.stdout.find("main_job materialised"):]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1, help="fresh `selfinstruct demo` runs")
    ap.add_argument("--harvest", default=None, help="a home where `make demo` already ran, added as a run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results_demo.json"))
    ap.add_argument("--keep", default=None, help="move the last fresh run's home here (for bench_rag/bench_loop)")
    args = ap.parse_args()
    runs = [{**read_run(Path(args.harvest).resolve()), "harvested": True}] if args.harvest else []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(dir="/work" if Path("/work").is_dir() else None) as tmp:
            runs.append(fresh_run(Path(tmp)))
            if args.keep and i == args.runs - 1:
                shutil.move(str(Path(tmp) / "home"), args.keep)
        print(json.dumps({k: v for k, v in runs[-1].items() if k not in ("steps", "summary")}), flush=True)
    keys = sorted({k for r in runs for k in r["steps"]})
    median = {k: statistics.median(r["steps"][k] for r in runs if k in r["steps"]) for k in keys}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    Path(args.out).write_text(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"), "commit": commit, "median_run_s": statistics.median(r["run_s"] for r in runs),
        "median_step_s": median, "runs": runs}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
