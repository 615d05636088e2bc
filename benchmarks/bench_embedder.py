"""MiniLM throughput and agreement by precision (why `precision="auto"` picks bfloat16 on this CPU).

    .venv/bin/python benchmarks/bench_embedder.py --home .selfinstruct --n 1024 --runs 3

Embeds the same --n chunks of `contract_chunks` in float32 and bfloat16 (and int8 dynamic quantisation for
reference), --runs times each, and reports the median chunks/s and the cosine of each variant's vectors
to float32's. Needs a home where the corpus has been materialised.
"""

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

import duckdb
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", required=True)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import torch

    from resources.embedders import MiniLMEmbedder, _normalise

    with duckdb.connect(str(Path(args.home) / "selfinstruct.duckdb"), read_only=True) as conn:
        texts = [
            t
            for (t,) in conn.execute(
                f"select text from contract_chunks order by hash(chunk_id) limit {int(args.n)}"
            ).fetchall()
        ]
    full = MiniLMEmbedder(precision="float32").model
    variants = {
        "float32": full,
        "bfloat16": copy.deepcopy(full).to(torch.bfloat16),
        "int8_dynamic": torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(full), {torch.nn.Linear}, dtype=torch.qint8
        ),
    }
    out, reference = {}, None
    for name, model in variants.items():
        speeds = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            vecs = model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
            speeds.append(len(texts) / (time.perf_counter() - t0))
        vecs = _normalise(np.asarray(vecs, dtype=np.float32))
        reference = vecs if reference is None else reference
        cos = (vecs * reference).sum(axis=1)
        out[name] = {
            "chunks_per_s": statistics.median(speeds),
            "runs": speeds,
            "cosine_to_float32_min": float(cos.min()),
            "cosine_to_float32_mean": float(cos.mean()),
        }
        print(name, json.dumps(out[name]), flush=True)
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores",
                "date": time.strftime("%Y-%m-%d"),
                "n": len(texts),
                "variants": out,
            }
        )
    )


if __name__ == "__main__":
    main()
