"""Training step memory and speed by micro-batch (why the adapters train one row per micro-batch).

    .venv/bin/python benchmarks/bench_training.py --home .selfinstruct --steps 3

Runs `python -m training dpo` for --steps optimizer steps (4 pairs each) on the home's preference_pairs,
continuing the home's SFT adapter, with micro-batches of 4, 2 and 1 pairs (gradient accumulation making up
the rest), each in its own process under GNU time; reports its peak RSS and the trainer's tokens/s.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", required=True)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    import duckdb

    from selfinstruct.finetune.prompts import preference_row

    home = Path(args.home).resolve()
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        rows = [
            preference_row(json.loads(p), c, r)
            for p, c, r in conn.execute("select prompt_json, chosen, rejected from preference_pairs").fetchall()
        ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        for micro in (4, 2, 1):
            config = Path(tmp) / f"dpo{micro}.json"
            config.write_text(
                json.dumps(
                    {
                        "base_model": str(home / "models" / "smollm2-135m-instruct"),
                        "dataset": str(data),
                        "out_dir": str(Path(tmp) / f"out{micro}"),
                        "start_adapter": str(home / "adapters" / "sft"),
                        "settings": {"max_steps": args.steps, "batch_size": micro, "grad_accum": 4 // micro},
                    }
                )
            )
            t0 = time.perf_counter()
            # GNU time's %M: the trainer process's own peak RSS in KiB, on the last line of stderr
            proc = subprocess.run(
                ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "training", "dpo", "--config", str(config)],
                capture_output=True,
                text=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )
            if proc.returncode:
                sys.exit(proc.stderr[-3000:])
            peak_kib = int(proc.stderr.strip().splitlines()[-1])
            metrics = json.loads(proc.stdout)
            results.append(
                {
                    "micro_batch": micro,
                    "grad_accum": 4 // micro,
                    "seconds": time.perf_counter() - t0,
                    "peak_rss_gib": peak_kib / 2**20,
                    "tokens_per_s": metrics["tokens_per_s"],
                    "precision": metrics.get("precision"),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "steps": args.steps, "pairs": len(rows), "results": results}))


if __name__ == "__main__":
    main()
