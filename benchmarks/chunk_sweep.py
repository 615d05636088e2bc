"""Chunk-size sweep: recall@1/3/5 of dense (MiniLM) and BM25 retrieval on held-out contracts.

    .venv/bin/python benchmarks/chunk_sweep.py 5000:30 1000:200 500:100
    .venv/bin/python benchmarks/chunk_sweep.py 1000:0:256 1000:0:128   # third field: MiniLM's max_seq_length

Chunks of the eval-split contracts only are embedded (brute-force cosine, same code as retrieval_eval's
seed baseline); recall grows with chunk size, so compare at equal retrieved context (mean_context_chars).
"""

import sys
import time
from pathlib import Path

from resources.embedders import MiniLMEmbedder
from selfinstruct.corpus.chunking import chunk_contracts
from selfinstruct.corpus.cuad import load_cuad
from selfinstruct.corpus.source import cuad_uri_from_env, open_cuad_source
from selfinstruct.retrieval.evaluate import eval_questions, rank_bm25, rank_dense, recall_rows


def main(pairs: list[str]) -> None:
    corpus = load_cuad(open_cuad_source(cuad_uri_from_env(), Path("/tmp/selfinstruct-cache")))
    contracts = [c for c in corpus.contracts if c["split"] == "eval"]
    questions = eval_questions(corpus.annotations, {c["contract_id"] for c in contracts})
    embedder = MiniLMEmbedder()
    print(f"{len(questions)} questions on {len(contracts)} eval contracts")
    print("| size:overlap[:tokens] | chunks | method | recall@1 | recall@3 | recall@5 | context chars @3 | embed s |")
    print("|---|---|---|---|---|---|---|---|")
    for pair in pairs:
        size, overlap, *tokens = (int(x) for x in pair.split(":"))
        embedder.model.max_seq_length = tokens[0] if tokens else 256  # MiniLM truncates its input there
        chunks = chunk_contracts(contracts, size, overlap)
        t0 = time.perf_counter()
        dense = rank_dense(questions, chunks, embedder.embed, 5)
        secs = time.perf_counter() - t0
        for method, ranked in (("dense", dense), ("bm25", rank_bm25(questions, chunks, 5))):
            rows = recall_rows(method, questions, ranked)
            print(
                f"| {pair} | {len(chunks)} | {method} | "
                + " | ".join(f"{r['recall']:.3f}" for r in rows)
                + f" | {rows[1]['mean_context_chars']:.0f} | {secs if method == 'dense' else 0:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["5000:30", "1000:200", "500:100"])
