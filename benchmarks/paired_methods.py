"""Paired comparisons of benchmark methods on the same held-out questions, from a home's benchmark_answers.

    .venv/bin/python benchmarks/paired_methods.py --home /work/runs/final1 sft:base dpo:sft orpo:base sft:bm25_sentence

For each `a:b`: CUAD match on answerable questions, mean(a) - mean(b) with a 95 % bootstrap interval clustered
by contract and its p-value (the same `paired_bootstrap` as benchmark_scores), and the exact McNemar test.
Reads the latest benchmark run only.
"""

import argparse

import duckdb

from selfinstruct.core.stats import mcnemar, paired_bootstrap


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", required=True)
    ap.add_argument("pairs", nargs="+", help="method_a:method_b")
    args = ap.parse_args()
    with duckdb.connect(f"{args.home}/selfinstruct.duckdb", read_only=True) as con:
        rows = con.execute(
            "select method, question_id, contract_id, cuad_match from benchmark_answers "
            "where has_clause and run_id = (select run_id from benchmark_answers "
            "order by created_at desc limit 1)"
        ).fetchall()
    by = {}
    for method, qid, cid, match in rows:
        by.setdefault(method, {})[qid] = (cid, match)
    print(
        "| a − b | n | mean a | mean b | diff [95 % CI, clustered by contract] | bootstrap p | McNemar a wins / b wins, p |"
    )
    print("|---|---|---|---|---|---|---|")
    for pair in args.pairs:
        a, b = pair.split(":")
        qids = sorted(set(by[a]) & set(by[b]))
        xa, xb = [by[a][q][1] for q in qids], [by[b][q][1] for q in qids]
        boot = paired_bootstrap(xa, xb, [by[a][q][0] for q in qids], n_boot=2000)
        mc = mcnemar([int(v) for v in xa], [int(v) for v in xb])
        print(
            f"| {a} − {b} | {boot['n']} | {boot['mean_a']:.3f} | {boot['mean_b']:.3f} | {boot['diff']:+.3f} "
            f"[{boot['low']:+.3f}, {boot['high']:+.3f}] | {boot['p_value']:.4f} | {mc['b10']}/{mc['b01']}, "
            f"{mc['p_value']:.3f} |"
        )


if __name__ == "__main__":
    main()
