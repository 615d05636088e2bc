"""Verbatim answering on held-out CUAD contracts: BM25 sentence, LM-scored windows, oracle window (issue 12 §1).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_answering.py --answerable 25 --unanswerable 15

Reads ../shared/cuad/CUAD_v1.zip, chunks it (1,000/200), takes the BM25 top-k chunks of each question within its
contract, builds candidate windows of 1-3 sentences, and answers with: the BM25-best sentence (no LLM), the
packaged SmolLM2 scoring every window and "No such clause." (`answering.scoring`), and the best window by
CUAD match (oracle: what a perfect chooser over these candidates reaches). Reports CUAD match on answerable
questions and clause detection accuracy on all of them, with seconds per question.
"""

import argparse
import hashlib
import json
import time
from pathlib import Path

from selfinstruct.answering import NO_CLAUSE, SpanScorer, bm25_answer, candidate_spans, quote_messages
from selfinstruct.answering.scoring import normalised
from selfinstruct.core.base_model import prepare_base_model
from selfinstruct.core.metrics import cuad_match
from selfinstruct.core.paths import project_home
from selfinstruct.corpus.chunking import chunk_contracts
from selfinstruct.corpus.cuad import load_cuad
from selfinstruct.corpus.source import default_cuad_uri, open_cuad_source
from selfinstruct.rag.evaluate import sample_questions
from selfinstruct.retrieval.evaluate import Question, rank_bm25

ALPHAS = (0.0, 0.5, 0.75, 1.0)


def load(n_ans: int, n_none: int, k: int) -> list[dict]:
    archive = open_cuad_source(default_cuad_uri(), project_home() / "cache")
    try:
        corpus = load_cuad(archive)
    finally:
        archive.close()
    contracts = {c["contract_id"]: c for c in corpus.contracts}
    qs = [dict(q, answerable=True) for q in sample_questions(corpus.annotations, contracts, "eval", n_ans)]
    none = sorted(
        (a for a in corpus.annotations if a["is_impossible"] and contracts[a["contract_id"]]["split"] == "eval"),
        key=lambda a: hashlib.sha256(f"0:{a['contract_id']}:{a['category']}".encode()).hexdigest(),
    )
    qs += [
        {
            "contract_id": a["contract_id"],
            "category": a["category"],
            "question": a["question"],
            "gold_answers": [],
            "answerable": False,
        }
        for a in none[:n_none]
    ]
    needed = {q["contract_id"] for q in qs}
    chunks = chunk_contracts([contracts[c] for c in sorted(needed)], 1000, 200)
    by_range = {(c["contract_id"], c["start"], c["end"]): c for c in chunks}
    ranked = rank_bm25([Question(q["contract_id"], q["category"], q["question"], ()) for q in qs], chunks, k)
    for q, r in zip(qs, ranked):
        q["chunks"] = [by_range[(q["contract_id"], s, e)] for s, e in r]
    return qs


def run(qs: list[dict], scorer: SpanScorer, max_chars: int) -> list[dict]:
    rows = []
    for i, q in enumerate(qs):
        passages = [{"text": c["text"], "start": c["start"]} for c in q["chunks"]]
        spans = candidate_spans(passages, max_chars=max_chars)
        t0 = time.perf_counter()
        base = bm25_answer(q["question"], passages)
        t_bm25 = time.perf_counter() - t0
        t0 = time.perf_counter()
        scored = scorer.logprobs(
            quote_messages(q["question"], [p["text"] for p in passages]), [s.text for s in spans] + [NO_CLAUSE]
        )
        t_lm = time.perf_counter() - t0
        rows.append(
            {
                **{k: q[k] for k in ("contract_id", "category", "answerable", "gold_answers")},
                "spans": [s.text for s in spans],
                "scored": scored,
                "bm25": base.prediction,
                "oracle": max((cuad_match(s.text, q["gold_answers"]) for s in spans), default=0.0),
                "oracle_1500": max(
                    (cuad_match(s.text, q["gold_answers"]) for s in candidate_spans(passages)), default=0.0
                ),
                "oracle_sentence": max(
                    (cuad_match(s.text, q["gold_answers"]) for s in candidate_spans(passages, max_sentences=1)),
                    default=0.0,
                ),
                "t_bm25": t_bm25,
                "t_lm": t_lm,
            }
        )
        print(f"{i + 1}/{len(qs)} {q['category'][:30]:30s} spans={len(spans):3d} lm={t_lm:.1f}s", flush=True)
    return rows


def lm_pick(row: dict, alpha: float) -> tuple[str, float]:
    """(best span, its margin over "No such clause.") at length normalisation `alpha`."""
    values = [normalised(lp, n, alpha) for lp, n in row["scored"]]
    none = values.pop()
    best = max(range(len(values)), key=values.__getitem__)
    return row["spans"][best], values[best] - none


def report(rows: list[dict]) -> None:
    ans = [r for r in rows if r["answerable"]]
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    share_ans = len(ans) / len(rows)
    print(f"\n{len(ans)} answerable + {len(rows) - len(ans)} unanswerable eval-split questions, BM25 top-k chunks")
    print(f"{'method':34s} {'CUAD match (ans.)':>17s} {'detection acc.':>14s} {'s/question':>10s}")
    print(
        f"{'bm25 sentence (no LLM)':34s} {mean([cuad_match(r['bm25'], r['gold_answers']) for r in ans]):17.3f} "
        f"{share_ans:14.3f} {mean([r['t_bm25'] for r in rows]):10.3f}"
    )
    for alpha in ALPHAS:
        picks = [lm_pick(r, alpha) for r in rows]
        forced = mean([cuad_match(t, r["gold_answers"]) for r, (t, _) in zip(rows, picks) if r["answerable"]])
        gated = mean(
            [cuad_match(t, r["gold_answers"]) if g > 0 else 0.0 for r, (t, g) in zip(rows, picks) if r["answerable"]]
        )
        acc0 = mean([(g > 0) == r["answerable"] for r, (_, g) in zip(rows, picks)])
        grid = sorted({g for _, g in picks})
        best_acc, best_m = max(
            (mean([(g > m) == r["answerable"] for r, (_, g) in zip(rows, picks)]), m) for m in [grid[0] - 1] + grid
        )
        print(
            f"{f'SmolLM2 windows alpha={alpha}':34s} {forced:17.3f} {acc0:14.3f} {mean([r['t_lm'] for r in rows]):10.3f}"
            f"   (gated by margin 0: match {gated:.3f}; best in-sample margin {best_m:.2f}: acc {best_acc:.3f})"
        )
    print(f"{'oracle sentence':34s} {mean([r['oracle_sentence'] for r in ans]):17.3f} {1.0:14.3f}")
    print(f"{'oracle window (1-3 sentences)':34s} {mean([r['oracle'] for r in ans]):17.3f} {1.0:14.3f}")
    print(f"{'oracle window, max_chars=1500':34s} {mean([r['oracle_1500'] for r in ans]):17.3f} {1.0:14.3f}")
    print(f"{'always no clause':34s} {0.0:17.3f} {1 - share_ans:14.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answerable", type=int, default=25)
    ap.add_argument("--unanswerable", type=int, default=15)
    ap.add_argument("--k", type=int, default=3, help="BM25 chunks per question")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    ap.add_argument("--max-chars", type=int, default=1500, help="longest multi-sentence window")
    ap.add_argument("--out", type=Path, help="optional JSON of per-question rows")
    args = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    qs = load(args.answerable, args.unanswerable, args.k)
    folder = prepare_base_model(project_home() / "models")  # float32, as LocalLM loads it by default
    tok, model = (
        AutoTokenizer.from_pretrained(folder),
        AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, args.precision)).eval(),
    )
    rows = run(qs, SpanScorer(model, tok, batch_size=args.batch_size), args.max_chars)
    report(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
