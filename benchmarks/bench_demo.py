"""`make demo` timings (issue: fine-tuning performance goals): wall time, peak RSS and seconds per asset.

    .venv/bin/python benchmarks/bench_demo.py --runs 2 --harvest .selfinstruct --out benchmarks/results_demo.json

Each run is `selfinstruct demo` in a fresh SELFINSTRUCT_HOME (nothing cached: the index is embedded and
every LM call generated). `--harvest HOME` adds a run that `make demo` already made in HOME, read from its
Dagster instance. Peak memory: `peak_rss_gib` is the demo process alone (its ru_maxrss); `peak_tree_rss_gib` is the
peak summed RSS of the demo and all its descendants (training runs in child processes), sampled every 0.5 s by
tree_memory.TreeSampler, also per step inside the step's [start, end] from Dagster's step stats (goal: <= 6 GB).
`demo_peak_rise_gib` per step is by how much the step raised the demo process's own high-water mark (VmHWM, exact,
unlike the samples). Per step: the median over runs of the step's seconds, the max over runs of its peak tree RSS;
the latest benchmark table is kept.
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

from tree_memory import TreeSampler, peak_per_window, rise_per_window

ROOT = Path(__file__).resolve().parents[1]
READ_RUN = """
import json, dagster as dg, duckdb
with dg.DagsterInstance.get() as instance:
    [run] = instance.get_runs(filters=dg.RunsFilter(job_name="main_job"), limit=1)
    stats = instance.get_run_stats(run.run_id)
    steps = {s.step_key: {"seconds": s.end_time - s.start_time, "start_time": s.start_time, "end_time": s.end_time}
             for s in instance.get_run_step_stats(run.run_id) if s.start_time and s.end_time}
with duckdb.connect(%r, read_only=True) as conn:
    bench = conn.execute("select method, n, judge_score, cuad_match, token_f1, exact_match, improvement_pct, "
                         "cuad_ratio, mean_latency_s from benchmark_scores where run_id = ? order by method",
                         [run.run_id]).fetchall()
print(json.dumps({"run_id": run.run_id, "status": run.status.value, "run_s": stats.end_time - stats.start_time,
                  "steps": steps, "benchmark": bench}))
"""


def read_run(home: Path) -> dict:
    env = {**os.environ, "SELFINSTRUCT_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    out = subprocess.run(
        [sys.executable, "-c", READ_RUN % str(home / "selfinstruct.duckdb")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_run(tmp: Path) -> dict:
    home = tmp / "home"
    env = {**os.environ, "SELFINSTRUCT_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "selfinstruct_assets.instance"], env=env, check=True, capture_output=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "selfinstruct"), "demo"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with TreeSampler(proc.pid, interval=0.5) as sampler:  # samples in its thread while communicate() reads here
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"selfinstruct demo failed:\n{stderr[-4000:]}")
    rss = re.search(r"peak RSS ([\d.]+) GiB", stdout)
    run = read_run(home)
    windows = {k: (v["start_time"], v["end_time"]) for k, v in run["steps"].items()}
    peaks = peak_per_window(sampler.samples, windows)
    rises = rise_per_window(sampler.root_high_water, windows)  # exact: which steps raised the demo process's peak
    for k, peak in peaks.items():
        run["steps"][k]["peak_tree_rss_gib"] = gib(peak)
        run["steps"][k]["demo_peak_rise_gib"] = gib(rises[k])
    return {
        **run,
        "wall_s": wall,
        "peak_rss_gib": float(rss.group(1)) if rss else None,
        "peak_tree_rss_gib": gib(sampler.peak),
        "summary": stdout[stdout.find("main_job materialised") :],
    }


def gib(n: int | None) -> float | None:
    return None if n is None else round(n / 1024**3, 3)


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
    # Per step: seconds is the median over runs; peak_tree_rss_gib the max over runs (None: no sample in its window,
    # or only harvested runs, which have no sampler).
    per_step = {}
    for k in keys:
        stats = [r["steps"][k] for r in runs if k in r["steps"]]
        peaks = [s["peak_tree_rss_gib"] for s in stats if s.get("peak_tree_rss_gib") is not None]
        rises = [s["demo_peak_rise_gib"] for s in stats if s.get("demo_peak_rise_gib") is not None]
        per_step[k] = {
            "seconds": statistics.median(s["seconds"] for s in stats),
            "peak_tree_rss_gib": max(peaks, default=None),
            "demo_peak_rise_gib": max(rises, default=None),
        }
    for k, v in per_step.items():
        print(
            f"{k:40s} {v['seconds']:8.1f} s  peak tree RSS {v['peak_tree_rss_gib']} GiB  "
            f"raised the demo's peak by {v['demo_peak_rise_gib']} GiB"
        )
    tree_peaks = [r["peak_tree_rss_gib"] for r in runs if r.get("peak_tree_rss_gib") is not None]
    print(f"peak tree RSS over runs: {max(tree_peaks, default=None)} GiB")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    Path(args.out).write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
                "date": time.strftime("%Y-%m-%d"),
                "commit": commit,
                "median_run_s": statistics.median(r["run_s"] for r in runs),
                "max_peak_tree_rss_gib": max(tree_peaks, default=None),
                "steps": per_step,
                "runs": runs,
            },
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
