"""Index build benchmark on the whole local CUAD copy (issue: foundation performance goals).

    .venv/bin/python benchmarks/bench_index.py --runs 3 --out benchmarks/results_index.json

Each run, in its own subprocess and temporary SELFINSTRUCT_HOME:
  1. materialise cuad_corpus from CUAD minus one contract (untimed);
  2. time contract_chunks + vector_index (the full build) with the packaged MiniLM and embedded Chroma;
  3. time the embedder alone on a fixed sample of the same chunks (raw throughput, the limit);
  4. add the held-back contract to the CUAD source and time cuad_corpus + contract_chunks + vector_index again;
  5. drop a renamed copy of it in the contracts inbox and time its partition (row, chunks, vectors);
  6. record peak RSS. Run 1 also materialises retrieval_eval.
"""

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def minus_one(src: Path, dst: Path) -> str:
    """Copy of the CUAD zip without its last contract (txt file and CSV row); returns the held-back name."""
    import csv
    import io

    csv.field_size_limit(sys.maxsize)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        names = sorted(n for n in zin.namelist() if n.endswith(".txt") and "full_contract_txt/" in n)
        held = names[-1]
        from selfinstruct.corpus.cuad import fold_name

        for n in zin.namelist():
            if n == held:
                continue
            data = zin.read(n)
            if n.endswith("master_clauses.csv"):
                rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
                rows = [r for r in rows if not r or fold_name(r[0]) != fold_name(held)]
                buf = io.StringIO()
                csv.writer(buf).writerows(rows)
                data = buf.getvalue().encode()
            zout.writestr(n, data)
    return held


def add_through_inbox(cuad: Path, held: str, resources: dict) -> float:
    """Seconds from the held-back contract's txt in the contracts inbox to its vectors in the index: the
    new_contracts_sensor path (one dynamic partition: row, chunks, vectors), run here without the daemon."""
    import dagster as dg

    from selfinstruct.core.inbox import inbox_for
    from selfinstruct.intake.contract_inbox import read_contract_files
    from selfinstruct_assets.definitions import ASSETS
    from selfinstruct_assets.partitions import ADDED_CONTRACTS

    inbox = inbox_for("contracts")
    # CUAD already holds the held-back contract by now: a copy under another name and first line is new.
    with zipfile.ZipFile(cuad) as z:
        inbox.write(Path(held).stem + " - inbox copy.txt", b"INBOX COPY\n" + z.read(held))
    t0 = time.perf_counter()
    [contract], _ = read_contract_files(inbox)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ADDED_CONTRACTS.name, [contract["contract_id"]])
        res = dg.materialize(
            ASSETS,
            instance=instance,
            resources=resources,
            partition_key=contract["contract_id"],
            selection=dg.AssetSelection.assets("added_contracts", "added_contract_chunks", "added_contract_index"),
        )
    assert res.success
    return time.perf_counter() - t0


def one_run(cuad: str, with_eval: bool, sample: int) -> dict:
    import dagster as dg

    from selfinstruct_assets.corpus.checks import CORPUS_CHECKS
    from selfinstruct_assets.definitions import ASSETS, default_resources
    from selfinstruct_assets.retrieval.checks import RETRIEVAL_CHECKS

    home = Path(os.environ["SELFINSTRUCT_HOME"])
    smaller = home / "CUAD_minus_one.zip"
    held = minus_one(Path(cuad), smaller)
    resources = default_resources()
    embedder = resources["embedder"].get()
    embedder.embed(["warm up"])  # model load is not part of the build

    def mat(uri: str, keys: list[str]) -> float:
        cfg = {"ops": {"cuad_corpus": {"config": {"uri": uri}}}} if "cuad_contracts" in keys else {}
        t0 = time.perf_counter()
        res = dg.materialize(
            ASSETS + CORPUS_CHECKS + RETRIEVAL_CHECKS,
            resources=resources,
            run_config=cfg,
            selection=dg.AssetSelection.assets(*keys),
        )
        assert res.success
        return time.perf_counter() - t0

    mat(str(smaller), ["cuad_contracts", "cuad_annotations", "cuad_rejects"])
    full = mat("", ["contract_chunks", "vector_index"])
    import duckdb

    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        texts = [r[0] for r in conn.execute("select text from contract_chunks").fetchall()]
    rng = random.Random(0)
    picked = rng.sample(texts, min(sample, len(texts)))
    t0 = time.perf_counter()
    embedder.embed(picked)
    raw_cps = len(picked) / (time.perf_counter() - t0)
    incremental = mat(cuad, ["cuad_contracts", "cuad_annotations", "cuad_rejects", "contract_chunks", "vector_index"])
    partition = add_through_inbox(Path(cuad), held, resources)
    out = {
        "chunks_before": len(texts),
        "full_build_s": full,
        "build_chunks_per_s": len(texts) / full,
        "raw_chunks_per_s": raw_cps,
        "raw_sample": len(picked),
        "add_one_contract_s": incremental,
        "add_one_contract_partition_s": partition,
        "held_back": held,
        "embed_precision": getattr(embedder, "resolved_precision", lambda: "float32")(),
    }
    if with_eval:
        t0 = time.perf_counter()
        mat("", ["retrieval_eval"])
        out["retrieval_eval_s"] = time.perf_counter() - t0
        with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
            out["retrieval_eval"] = conn.execute(
                "select method, k, round(recall, 3), n, round(mean_context_chars) from retrieval_eval order by method, k"
            ).fetchall()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sample", type=int, default=2000, help="chunks in the raw-throughput sample")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results_index.json"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--with-eval", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    from selfinstruct.corpus.source import cuad_uri_from_env

    if args.child:
        print(json.dumps(one_run(cuad_uri_from_env(), args.with_eval, args.sample)))
        return
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "SELFINSTRUCT_HOME": home, "DAGSTER_HOME": home, "HF_HUB_OFFLINE": "1"}
            cmd = [sys.executable, __file__, "--child", "--sample", str(args.sample)] + (
                ["--with-eval"] if i == 0 else []
            )
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"run {i + 1} failed:\n{proc.stderr[-4000:]}")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(
                f"run {i + 1}: {json.dumps({k: v for k, v in runs[-1].items() if k != 'retrieval_eval'})}", flush=True
            )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit,
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(meta, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
