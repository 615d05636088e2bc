"""How the base model picks among BM25-prefiltered windows: per-token mean vs PMI, against BM25 and the oracle chunk.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_window_choice.py --n 24 --windows 10

Reads the CUAD archive (as `make demo`), takes `benchmark_questions` (eval split, answerable and not, categories in
turn), the BM25 top-3 chunks of each question's contract, and answers with finetune/benchmark.py's functions.
Prints CUAD match (answerable), detection accuracy (all) and seconds per question per method, as JSON.

Measured (24 questions, 9 answerable, 2 shared CPU cores at load ~5, packaged SmolLM2-135M, 10 windows):
bm25_sentence CUAD match 1/9, detection accuracy 0.42; base_mean 0/9, 0.38, 28 s/question. base_pmi and the
oracle row were not reached in the time available (PMI costs twice base_mean).
"""

import argparse
import json
import time

from selfinstruct.answering import SpanScorer
from selfinstruct.benchmark.methods import answer_rows, bm25_answers, oracle_context, scorer_answers
from selfinstruct.core.base_model import prepare_base_model
from selfinstruct.core.paths import project_home
from selfinstruct.corpus.chunking import chunk_contracts
from selfinstruct.corpus.cuad import load_cuad
from selfinstruct.corpus.questions import benchmark_questions
from selfinstruct.corpus.source import default_cuad_uri, open_cuad_source
from selfinstruct.retrieval.evaluate import Question, rank_bm25


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--windows", type=int, default=10)
    args = ap.parse_args()
    archive = open_cuad_source(default_cuad_uri(), project_home() / "cache")
    try:
        corpus = load_cuad(archive)
    finally:
        archive.close()
    contracts = {c["contract_id"]: c for c in corpus.contracts}
    qs = benchmark_questions(corpus.annotations, contracts, args.n)
    chunks = chunk_contracts([contracts[c] for c in sorted({q["contract_id"] for q in qs})], 1000, 200)
    by_range = {(c["contract_id"], c["start"], c["end"]): c["text"] for c in chunks}
    ranked = rank_bm25([Question(q["contract_id"], q["category"], q["question"], ()) for q in qs], chunks, 3)
    contexts = [[by_range[(q["contract_id"], s, e)] for s, e in r] for q, r in zip(qs, ranked)]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = prepare_base_model(project_home() / "models")
    scorer = SpanScorer(AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder))
    oracle = [oracle_context(q, contracts[q["contract_id"]]["text"], c) for q, c in zip(qs, contexts)]
    out = {}
    for name, make in [
        ("bm25_sentence", lambda: bm25_answers(qs, contexts)),
        ("base_mean", lambda: scorer_answers(scorer, qs, contexts, args.windows, 0.0)),
        ("base_pmi", lambda: scorer_answers(scorer, qs, contexts, args.windows, 0.0, pmi=True)),
        ("oracle_mean", lambda: scorer_answers(scorer, qs, oracle, args.windows, 0.0)),
    ]:
        t0 = time.perf_counter()
        rows = answer_rows(name, qs, make(), 0.0)
        ans = [r["cuad_match"] for r in rows if r["has_clause"]]
        out[name] = {
            "cuad_match": sum(ans) / max(1, len(ans)),
            "n_answerable": len(ans),
            "n": len(rows),
            "detection_acc": sum(r["has_clause"] == r["predicted_clause"] for r in rows) / len(rows),
            "s_per_q": round((time.perf_counter() - t0) / len(rows), 2),
        }
        print(name, out[name], flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
