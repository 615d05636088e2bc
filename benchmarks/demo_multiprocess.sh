#!/bin/bash
# The executor-overlap lever of the 15-minute demo: the quick profile's main_job under the multiprocess executor
# (the instance's pools still hold DuckDB writers to one at a time), in a fresh home; per-step start and seconds.
#   benchmarks/demo_multiprocess.sh /work/runs/overlap_home      # compare with bench_demo.py's steps
set -euo pipefail
cd "$(dirname "$0")/.."
H=${1:?a folder for a fresh home}; rm -rf "$H"; mkdir -p "$H"
export SELFINSTRUCT_HOME=$H DAGSTER_HOME=$H/dagster HF_HUB_OFFLINE=1 SELFINSTRUCT_EXECUTOR=multiprocess
.venv/bin/python -m selfinstruct_assets.instance
.venv/bin/python -c "import yaml; from selfinstruct_assets.cli.demo import demo_run_config; print(yaml.safe_dump(demo_run_config()))" > "$H/run_config.yaml"
start=$(date +%s)
.venv/bin/dagster job execute -m selfinstruct_assets.definitions -j main_job -c "$H/run_config.yaml" > "$H/run.log" 2>&1 || true
echo "wall_s $(( $(date +%s) - start ))"
.venv/bin/python - <<'PY'
import dagster as dg
with dg.DagsterInstance.get() as inst:
    [run] = inst.get_runs(limit=1)
    stats = sorted((s for s in inst.get_run_step_stats(run.run_id) if s.start_time), key=lambda s: s.start_time)
    for s in stats:
        end = f"{s.end_time - s.start_time:7.1f}" if s.end_time else "   (unfinished)"
        print(f"{s.step_key:44s} start {s.start_time - stats[0].start_time:7.1f} seconds {end}")
PY
