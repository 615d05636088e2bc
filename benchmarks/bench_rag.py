"""RAG and self-instruct benchmark on the embedded SmolLM2 (issue: compound AI system performance).

    .venv/bin/python benchmarks/bench_rag.py --home .selfinstruct --out benchmarks/results_rag.json

Needs a home where `make demo` has run (corpus, index, programs). Measures, in one process:
  1. answers/s of the local backend on the same held-out prompts, one by one vs batched;
  2. rag_eval materialised twice with unchanged inputs: second ÷ first (the LM call cache);
  3. synthetic_qa materialised with a cold LM cache: seconds per kept triplet;
  4. standard vs optimised RAG scores on held-out contracts (rag_eval_summary).
"""

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def answers_per_second(resources: dict, n: int) -> dict:
    """RAG prompts (3 retrieved chunks + question) of held-out questions, one by one vs one batched call."""
    import duckdb

    from resources.local_lm import LocalLM
    from selfinstruct.core.paths import duckdb_path
    from selfinstruct.retrieval.retriever import make_retriever

    with duckdb.connect(duckdb_path(), read_only=True) as conn:
        qs = conn.execute(
            "select question, contract_id from rag_eval where method = 'standard_rag' order by question_id limit ?", [n]
        ).fetchall()
    retrieve = make_retriever(resources["embedder"], resources["chroma"])
    prompts = [
        [
            {
                "role": "user",
                "content": "Contract excerpts:\n"
                + "\n\n".join(retrieve(q, c, 3))
                + f"\n\nQuestion: {q}\nAnswer briefly.",
            }
        ]
        for q, c in qs
    ]
    cached = resources["llm"].lm("generator")  # measure generation, not the cache: same weights, no cache folder
    lm = LocalLM(
        cached.model_dir,
        cached.adapter_path,
        cache_dir=None,
        max_tokens=cached.kwargs["max_tokens"],
        precision=cached.precision,
    )
    lm.generate_batch(prompts[:1])  # load the weights outside the timings
    t0 = time.perf_counter()
    for p in prompts:
        lm.generate_batch([p])
    single = time.perf_counter() - t0
    t0 = time.perf_counter()
    lm.generate_batch(prompts)
    batched = time.perf_counter() - t0
    return {
        "n": len(prompts),
        "batch_size": lm.batch_size,
        "precision": lm.precision,
        "one_by_one_answers_per_s": len(prompts) / single,
        "batched_answers_per_s": len(prompts) / batched,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=str(ROOT / ".selfinstruct"))
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results_rag.json"))
    args = ap.parse_args()
    os.environ["SELFINSTRUCT_HOME"] = str(Path(args.home).resolve())
    import dagster as dg

    from selfinstruct.core.tables import query_readonly
    from selfinstruct_assets.definitions import ALL_CHECKS, ASSETS, default_resources

    resources = default_resources()
    out: dict = {"answers": answers_per_second(resources, args.n)}
    lm_cache = Path(args.home).resolve() / "cache" / "lm"
    if lm_cache.exists():  # the first run must be cold
        lm_cache.rename(lm_cache.with_name(f"lm.before-bench-{int(time.time())}"))
    t0 = time.perf_counter()
    res = dg.materialize(
        ASSETS + ALL_CHECKS,
        resources=resources,
        selection=dg.AssetSelection.assets("synthetic_qa", "synthetic_qa_rejects"),
    )
    assert res.success
    kept = query_readonly("select count(*) from synthetic_qa")[1][0][0]
    out["synthetic_qa"] = {
        "seconds": time.perf_counter() - t0,
        "kept": kept,
        "generated": kept + query_readonly("select count(*) from synthetic_qa_rejects")[1][0][0],
    }
    out["synthetic_qa"]["seconds_per_kept"] = out["synthetic_qa"]["seconds"] / max(1, kept)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        res = dg.materialize(
            ASSETS + ALL_CHECKS, resources=resources, selection=dg.AssetSelection.assets("rag_eval", "rag_eval_summary")
        )
        assert res.success
        times.append(time.perf_counter() - t0)
    out["rag_eval_first_s"], out["rag_eval_second_s"] = times
    out["rag_eval_ratio"] = times[1] / times[0]
    cols, rows = query_readonly("select * from rag_eval_summary order by method")
    out["rag_eval_summary"] = [dict(zip(cols, r)) for r in rows]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    out.update(machine=f"{platform.machine()} {os.cpu_count()} cores", date=time.strftime("%Y-%m-%d"), commit=commit)
    Path(args.out).write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
