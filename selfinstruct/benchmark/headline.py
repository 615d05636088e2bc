"""The three lines a newcomer wants after a run: the best method against the base model, the served retriever
against BM25, and where to look next.

    best = best_versus_base(answer_rows)          # benchmark_answers rows of one run
    print("\n".join(headline_lines(best, {"hybrid": 0.55, "bm25": 0.49}, "hybrid")))

Dagster-free. "Best" is the method with the highest CUAD match on answerable questions, leaving out the base
model itself and the oracle row (perfect retrieval is a reference, not a method). Its difference from the base
model is paired on the same questions with an interval clustered by contract (`core.stats.paired_bootstrap`);
an interval that holds 0 is said to be no difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from selfinstruct.core.stats import paired_bootstrap

NOT_METHODS = ("base", "oracle_retrieval")  # the comparison's reference and the perfect-retrieval reference row


def best_versus_base(rows: Sequence[Mapping], n_boot: int = 2000) -> dict | None:
    """{method, diff, low, high, p_value, n} for the best method minus base, or None without both."""
    scored: dict[str, dict[str, Mapping]] = {}
    for r in rows:
        if r.get("cuad_match") is not None:
            scored.setdefault(r["method"], {})[r["question_id"]] = r
    if "base" not in scored:
        return None
    means = {m: sum(r["cuad_match"] for r in qs.values()) / len(qs) for m, qs in scored.items() if m not in NOT_METHODS}
    if not means:
        return None
    best = max(sorted(means), key=lambda m: means[m])
    both = sorted(set(scored[best]) & set(scored["base"]))
    a = [float(scored[best][q]["cuad_match"]) for q in both]
    b = [float(scored["base"][q]["cuad_match"]) for q in both]
    boot = paired_bootstrap(a, b, [scored[best][q]["contract_id"] for q in both], n_boot=n_boot)
    return {"method": best, **{k: boot[k] for k in ("diff", "low", "high", "p_value")}, "n": len(both)}


def headline_lines(best: dict | None, recall_at_3: Mapping[str, float], served: str) -> list[str]:
    """Best method vs base, served retriever vs BM25 (recall@3), and the next commands to run."""
    if best is None:
        first = "Best method vs base: no benchmark_scores run with the base model yet."
    else:
        verdict = "no difference" if best["low"] <= 0 <= best["high"] else ("better" if best["diff"] > 0 else "worse")
        first = (
            f"Best method vs base: {best['method']} {best['diff']:+.3f} CUAD match "
            f"[{best['low']:+.3f}, {best['high']:+.3f}] 95 % (paired, n {best['n']} answerable questions): {verdict}."
        )
    if served in recall_at_3 and "bm25" in recall_at_3:
        second = (
            f"Served retriever ({served}) recall@3 {recall_at_3[served]:.3f} vs BM25 {recall_at_3['bm25']:.3f} "
            "on held-out contracts."
        )
    else:
        second = "Served retriever vs BM25: retrieval_eval has not measured both yet."
    third = (
        "Next: `make ui` (http://127.0.0.1:3000) for lineage and runs; "
        '`selfinstruct query "select method, cuad_match, detection_f1 from benchmark_scores order by created_at desc"`.'
    )
    return [first, second, third]
