"""One line per method of a benchmark run: metrics, 95 % intervals clustered by contract, paired tests vs a baseline.

    summary = summarize_methods(rows)          # benchmark_answers rows (finetune/benchmark.answer_rows + judge)

Dagster-free. CUAD match and token F1 are over answerable questions, EM over questions with a short answer,
detection (has such a clause?) over all. Intervals resample contracts (evaluation/stats.py). Each method is
paired with `baseline` on the questions both answered: `p_vs_standard` is the paired bootstrap p of the CUAD
match difference, `mcnemar_p` McNemar's exact p on the same 0/1 outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selfinstruct.core.stats import bootstrap_ci, mcnemar, paired_bootstrap


def detection(codes) -> tuple[float, float, float]:
    """Precision, recall, F1 of "has such a clause" from codes 2*gold + predicted (0..3); 0 where undefined."""
    codes = np.asarray(codes, dtype=int)
    tp, fp, fn = int(np.sum(codes == 3)), int(np.sum(codes == 1)), int(np.sum(codes == 2))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _ci(rows: list[dict], key: str, n_boot: int, seed: int) -> tuple:
    kept = [r for r in rows if r.get(key) is not None]
    return tuple(
        bootstrap_ci(
            [r[key] for r in kept], [r.get("contract_id", i) for i, r in enumerate(kept)], n_boot=n_boot, seed=seed
        )
    )


def _paired(rs: list[dict], base: list[dict], n_boot: int, seed: int) -> tuple[float | None, float | None]:
    by_q = {r["question_id"]: r for r in base if r.get("cuad_match") is not None}
    pairs = [(r, by_q[r["question_id"]]) for r in rs if r.get("cuad_match") is not None and r["question_id"] in by_q]
    if not pairs:
        return None, None
    a, b = [int(r["cuad_match"]) for r, _ in pairs], [int(s["cuad_match"]) for _, s in pairs]
    boot = paired_bootstrap(a, b, [r["contract_id"] for r, _ in pairs], n_boot=n_boot, seed=seed)
    return boot["p_value"], mcnemar(a, b)["p_value"]


def method_line(method: str, rs: list[dict], base: list[dict] | None, n_boot: int = 2000, seed: int = 0) -> dict:
    for i, r in enumerate(rs):  # rows from older callers carry no labels: answerable, own contract
        r.setdefault("has_clause", True), r.setdefault("contract_id", f"q{i}"), r.setdefault("question_id", f"q{i}")
    cm, cm_lo, cm_hi = _ci(rs, "cuad_match", n_boot, seed)
    labelled = [r for r in rs if r.get("predicted_clause") is not None]
    codes = [2 * int(r["has_clause"]) + int(r["predicted_clause"]) for r in labelled]
    p, rec, f1 = detection(codes) if codes else (None, None, None)
    f1_ci = (
        bootstrap_ci(
            codes, [r["contract_id"] for r in labelled], n_boot=n_boot, seed=seed, stat=lambda x: detection(x)[2]
        )
        if codes
        else None
    )
    p_std, p_mc = _paired(rs, base, n_boot, seed) if base is not None and method != "standard_rag" else (None, None)
    judged = [float(r["judge_score"]) for r in rs if r.get("judge_score") is not None]
    return {
        "method": method,
        "n": len(rs),
        "n_answerable": sum(bool(r["has_clause"]) for r in rs),
        "n_unanswerable": sum(not r["has_clause"] for r in rs),
        "n_no_context": sum(r.get("reason") == "no retrievable text" for r in rs),
        "cuad_match": cm,
        "cuad_match_low": cm_lo,
        "cuad_match_high": cm_hi,
        "detection_precision": p,
        "detection_recall": rec,
        "detection_f1": f1,
        "detection_f1_low": f1_ci.low if f1_ci else None,
        "detection_f1_high": f1_ci.high if f1_ci else None,
        "cuad_match_quote": _mean(r.get("quote_cuad_match") for r in rs if r["has_clause"]),
        "token_f1": _mean(r.get("token_f1") for r in rs),
        "exact_match": _mean(r.get("exact_match") for r in rs),
        "judge_score": sum(judged) / len(judged) if judged else None,
        "judge_missing": len(rs) - len(judged),
        "mean_latency_s": _mean(r.get("latency_s") for r in rs),
        "p_vs_standard": p_std,
        "mcnemar_p": p_mc,
    }


def summarize_methods(
    rows: Sequence[dict], baseline: str = "standard_rag", n_boot: int = 2000, seed: int = 0
) -> list[dict]:
    """Per-method lines plus `improvement_pct` (judge) and `cuad_ratio` versus `baseline`."""
    rows = [dict(r) for r in rows]
    by = {m: [r for r in rows if r["method"] == m] for m in dict.fromkeys(r["method"] for r in rows)}
    out = [method_line(m, rs, by.get(baseline), n_boot, seed) for m, rs in by.items()]
    base = next((o for o in out if o["method"] == baseline), {})
    for o in out:
        bj, bc = base.get("judge_score"), base.get("cuad_match")
        o["improvement_pct"] = (o["judge_score"] - bj) / bj * 100 if bj and o["judge_score"] is not None else None
        o["cuad_ratio"] = o["cuad_match"] / bc if bc and o["cuad_match"] is not None else None
    return out
