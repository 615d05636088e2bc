"""RSS over time of one asset step re-materialised in an existing home (run-budget issue: where a step's memory goes).

    SELFINSTRUCT_HOME=/work/runs/runB DAGSTER_HOME=/work/runs/runB/dagster HF_HUB_OFFLINE=1 \
      timeout 330 .venv/bin/python benchmarks/bench_step_memory.py benchmark_scores \
      --config '{"n_questions": 41, "n_windows": 6}' --samples /work/runs/step.samples

Samples this process's VmRSS every 0.2 s into `--samples` ("unix-time KiB" per line, appended as it goes, so a run
stopped by `timeout` keeps its samples) while `dg.materialize` runs the step on the home's upstream tables; the
step's log lines (e.g. the benchmark's per-method progress) are in the home's Dagster instance. To make the LM
generate again rather than read its cache, move `$SELFINSTRUCT_HOME/cache/lm` aside first.
"""

import argparse
import json
import threading
import time

import dagster as dg

from selfinstruct.core.memory import status_kib
from selfinstruct_assets.definitions import ASSETS, defs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", help="the asset op to materialise, e.g. benchmark_scores")
    ap.add_argument("--config", default="{}", help="the op's config as JSON")
    ap.add_argument("--samples", required=True)
    args = ap.parse_args()
    done = threading.Event()

    def sample() -> None:
        with open(args.samples, "a") as out:
            while not done.is_set():
                out.write(f"{time.time()} {status_kib('VmRSS')}\n")
                out.flush()
                time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    assets = [a for a in ASSETS if isinstance(a, dg.AssetsDefinition) and not a.partitions_def]
    keys = next(set(a.keys) for a in assets if a.op.name == args.step)
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            assets,
            resources=defs().resources,
            instance=instance,
            raise_on_error=False,
            run_config={"ops": {args.step: {"config": json.loads(args.config)}}},
            selection=dg.AssetSelection.assets(*keys),
        )
    done.set()
    print(json.dumps({"success": result.success, "run_id": result.run_id}))


if __name__ == "__main__":
    main()
