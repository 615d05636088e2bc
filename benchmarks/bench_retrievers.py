"""Retrievers and the trained judge on held-out CUAD contracts: recall@1/3/5 and judge/CUAD-match agreement.

    nice .venv/bin/python benchmarks/bench_retrievers.py --max-steps 40 --batch-size 16 > /tmp/bench_retrievers.log 2>&1

Retrieval is within the question's contract, so only eval-split chunks are embedded. Methods: dense (packaged
MiniLM), BM25, hybrid RRF, dense with a MiniLM fine-tuned on train-split (question, gold chunk) pairs, hybrid
with the fine-tuned dense, and the seed notebook's setup (5,000-char chunks, dense). Recall grows with chunk
size, so compare at equal context (mean_context_chars). The judge is a MiniLM cross-encoder trained on
train-split candidates and scored on eval-split ones; candidates are sentence windows around and away from the
gold clause labelled by CUAD match (a proxy for model answers, not model answers). Results: --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from resources.embedders import MiniLMEmbedder
from selfinstruct.corpus.chunking import chunk_contracts
from selfinstruct.corpus.cuad import load_cuad
from selfinstruct.corpus.source import cuad_uri_from_env, open_cuad_source
from selfinstruct.judging.judge_candidates import build_judge_examples
from selfinstruct.judging.trained_judge import TrainedJudge, agreement_report
from selfinstruct.retrieval.evaluate import eval_questions, rank_bm25, rank_dense, recall_rows
from selfinstruct.retrieval.hybrid import rank_hybrid
from selfinstruct.retrieval.pairs import build_pairs
from training.judge import JudgeTrainSettings, train_judge
from training.retriever import RetrieverTrainSettings, train_retriever


def cached(embed):
    """Embed each distinct text once across methods that share an embedder."""
    memo: dict[str, np.ndarray] = {}

    def run(texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in memo))
        if todo:
            memo.update(zip(todo, embed(todo)))
        return np.stack([memo[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    return run


def finetuned_embedder(model_dir: str) -> MiniLMEmbedder:
    """The packaged embedder class (same precision, batching, normalising) holding the fine-tuned weights."""
    import torch
    from sentence_transformers import SentenceTransformer

    emb = MiniLMEmbedder()
    model = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    emb.__dict__["model"] = model.to(torch.bfloat16) if emb.resolved_precision() == "bfloat16" else model
    return emb


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def retrieval(args, contracts, annotations, chunks, ev_ids, out: dict) -> None:
    eval_contracts = [c for c in contracts if c["contract_id"] in ev_ids]
    questions = eval_questions(annotations, ev_ids)
    ev_chunks = [c for c in chunks if c["contract_id"] in ev_ids]
    log(f"{len(questions)} questions, {len(eval_contracts)} eval contracts, {len(ev_chunks)} eval chunks")
    rows: list[dict] = []
    t0 = time.perf_counter()
    base = cached(MiniLMEmbedder().embed)
    rows += recall_rows("dense", questions, rank_dense(questions, ev_chunks, base, 5))
    out["seconds"]["embed_base"] = round(time.perf_counter() - t0, 1)
    rows += recall_rows("bm25", questions, rank_bm25(questions, ev_chunks, 5))
    for w in args.weights:
        rows += recall_rows(
            f"hybrid_rrf(bm25 {w}, dense 1)",
            questions,
            rank_hybrid(questions, ev_chunks, base, 5, args.rrf_k, (w, 1.0)),
        )
    t0 = time.perf_counter()
    seed_chunks = chunk_contracts(eval_contracts, 5000, 30)
    rows += recall_rows("seed_dense_5000", questions, rank_dense(questions, seed_chunks, base, 5))
    out["seconds"]["embed_seed"] = round(time.perf_counter() - t0, 1)
    log("base methods done; training the retriever")

    pairs = build_pairs(
        [a for a in annotations if a["contract_id"] not in ev_ids], chunks, ev_ids, hard_negatives=args.hard_negatives
    )
    settings = RetrieverTrainSettings(
        batch_size=args.batch_size,
        max_pairs=args.max_pairs,
        max_steps=args.max_steps,
        learning_rate=args.lr,
        hard_negatives=args.hard_negatives,
    )
    metrics = train_retriever(pairs, Path(args.workdir) / "retriever", settings)
    out["retriever_training"] = {k: v for k, v in metrics.items() if k != "settings"}
    log(f"trained: {out['retriever_training']}")
    t0 = time.perf_counter()
    tuned = cached(finetuned_embedder(metrics["model_dir"]).embed)
    rows += recall_rows("dense_finetuned", questions, rank_dense(questions, ev_chunks, tuned, 5))
    out["seconds"]["embed_finetuned"] = round(time.perf_counter() - t0, 1)
    for w in args.weights:
        rows += recall_rows(
            f"hybrid_rrf_finetuned(bm25 {w}, dense 1)",
            questions,
            rank_hybrid(questions, ev_chunks, tuned, 5, args.rrf_k, (w, 1.0)),
        )
    out["recall"] = rows
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    by: dict[str, dict] = {}
    for r in rows:
        by.setdefault(r["method"], {})[r["k"]] = r
    print("| method | recall@1 | recall@3 | recall@5 | context chars @3 |\n|---|---|---|---|---|")
    for m, ks in by.items():
        print(
            f"| {m} | {ks[1]['recall']:.3f} | {ks[3]['recall']:.3f} | {ks[5]['recall']:.3f} | "
            f"{ks[3]['mean_context_chars']:.0f} |",
            flush=True,
        )


def judge(args, contracts, annotations, ev_ids, out: dict) -> None:
    # A sample of annotations: labelling every candidate window by CUAD match is the slow part.
    rng = random.Random(0)
    answerable = [a for a in annotations if not a["is_impossible"] and len(a["answer_starts"])]
    train_ann = [a for a in answerable if a["contract_id"] not in ev_ids]
    held_ann = [a for a in answerable if a["contract_id"] in ev_ids]
    train = build_judge_examples(
        rng.sample(train_ann, min(len(train_ann), args.judge_examples)), contracts, seed=0, eval_contract_ids=ev_ids
    )
    held = build_judge_examples(rng.sample(held_ann, min(len(held_ann), args.judge_eval // 4)), contracts, seed=1)
    held = rng.sample(held, min(args.judge_eval, len(held)))
    log(
        f"judge: {len(train)} train candidates ({sum(e['label'] for e in train)} pos), "
        f"{len(held)} held-out ({sum(e['label'] for e in held)} pos)"
    )
    out["judge"] = {}
    for use_gold in (True, False):
        name = "cross_encoder_with_gold" if use_gold else "cross_encoder_no_gold"
        s = JudgeTrainSettings(
            use_gold=use_gold, max_examples=args.judge_examples, batch_size=16, max_length=256, learning_rate=5e-5
        )
        m = train_judge(train, Path(args.workdir) / name, s)
        t0 = time.perf_counter()
        scores = TrainedJudge(m["model_dir"]).score(
            [e["question"] for e in held], [e["candidate"] for e in held], [e["golds"] for e in held]
        )
        rep = agreement_report(scores.tolist(), [e["label"] for e in held])
        out["judge"][name] = {
            "train": {k: v for k, v in m.items() if k not in ("settings", "loss_curve")},
            "held_out": rep,
            "score_seconds": round(time.perf_counter() - t0, 1),
        }
        log(f"{name}: {out['judge'][name]}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--max-pairs", type=int, default=3000)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--hard-negatives", action="store_true")
    p.add_argument("--rrf-k", type=int, default=60)
    p.add_argument("--weights", type=float, nargs="+", default=[1.0, 0.5], help="BM25 weights to fuse with dense 1")
    p.add_argument("--judge-examples", type=int, default=480)
    p.add_argument("--judge-eval", type=int, default=600)
    p.add_argument("--skip", nargs="*", default=[], choices=["retrieval", "judge"])
    p.add_argument("--workdir", default="/tmp/bench_retrievers")
    p.add_argument("--out", default="/tmp/bench_retrievers.json")
    args = p.parse_args()
    t0 = time.perf_counter()
    corpus = load_cuad(open_cuad_source(cuad_uri_from_env(), Path("/tmp/selfinstruct-cache")))
    chunks = chunk_contracts(corpus.contracts, 1000, 200)
    ev_ids = {c["contract_id"] for c in corpus.contracts if c["split"] == "eval"}
    out: dict = {"args": vars(args), "seconds": {}}
    if "retrieval" not in args.skip:
        retrieval(args, corpus.contracts, corpus.annotations, chunks, ev_ids, out)
    if "judge" not in args.skip:
        judge(args, corpus.contracts, corpus.annotations, ev_ids, out)
    out["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    log(f"done in {out['seconds']['total']} s -> {args.out}")


if __name__ == "__main__":
    main()
