"""Two answer judges on the same real answers: Cohen's kappa and AUROC against CUAD match, and their difference.

    .venv/bin/python benchmarks/paired_judges.py /work/runs/judge_old.json /work/runs/judge_new.json

Reads two `bench_judge.py --save-scores` files made on one benchmark run's answers. Each judge says "right" at its
own calibrated threshold. Reported on all rows and on the rows the cross-encoder decides (an answerable question
answered with a quotation: "No such clause." rows and unanswerable questions are graded by rule, identically for
both judges). Each kappa and the difference (b - a) carry a 95 % interval from a bootstrap over contracts (questions of one
contract move together); the difference's two-sided p is `selfinstruct.core.stats`'s bootstrap p (the resampled
differences shifted to centre on zero), as the benchmark's paired method comparisons report it.
"""

import argparse
import json

import numpy as np

from selfinstruct.core.stats import auroc, cohen_kappa, paired_stat_bootstrap


def _judge_stats(rows: list[dict], thresholds: tuple[float, float]) -> dict:
    """Per judge j (0: a, 1: b): kappa at its threshold and AUROC, each of the rows at the positions given."""
    truth = np.array([int(r["right"] >= 0.5) for r in rows])
    scores = np.array([r["scores"] for r in rows], dtype=float).reshape(len(rows), 2)

    def kappa(j: int):
        return lambda at: cohen_kappa((scores[at, j] >= thresholds[j]).astype(int).tolist(), truth[at].tolist())

    def area(j: int):
        return lambda at: auroc(scores[at, j].tolist(), truth[at].tolist())

    return {"kappa": (kappa(0), kappa(1)), "auroc": (area(0), area(1))}


def compare(rows: list[dict], thresholds: tuple[float, float], n_boot: int = 2000, seed: int = 0) -> dict:
    """kappa and AUROC of judges a and b, and b - a with a contract-clustered bootstrap interval and p
    (`paired_stat_bootstrap`: the same resampling and p-value as the benchmark's paired comparisons)."""
    contracts = [r["contract_id"] for r in rows]
    tests = {
        name: paired_stat_bootstrap(a, b, len(rows), contracts, n_boot=n_boot, seed=seed)
        for name, (a, b) in _judge_stats(rows, thresholds).items()
    }
    k, area = tests["kappa"], tests["auroc"]
    out = {"n": len(rows), "contracts": k["n_clusters"], "kappa_a": k["a"].estimate, "kappa_b": k["b"].estimate}
    out |= {"auroc_a": area["a"].estimate, "auroc_b": area["b"].estimate}
    for name in ("a", "b"):  # each judge's own kappa interval, from the same resamples
        if k[name].low is not None:
            out[f"kappa_{name}_ci"] = [round(k[name].low, 3), round(k[name].high, 3)]
    for name, t in tests.items():
        if t["p_value"] is not None:
            out[f"{name}_diff"] = [round(t["diff"], 3), round(t["low"], 3), round(t["high"], 3), round(t["p_value"], 4)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()
    a, b = (json.load(open(x)) for x in (args.a, args.b))
    key = lambda r: (r["method"], r["question_id"])  # noqa: E731
    bs = {key(r): r for r in b["rows"]}
    rows = [{**r, "scores": (r["score"], bs[key(r)]["score"])} for r in a["rows"] if key(r) in bs]
    if len(rows) != len(a["rows"]) or len(rows) != len(b["rows"]):
        raise SystemExit(
            f"the two files judge different answers ({len(a['rows'])} vs {len(b['rows'])} rows, "
            f"{len(rows)} shared): make both on the same benchmark run"
        )
    thresholds = (a["threshold"], b["threshold"])
    decided = [r for r in rows if r["has_clause"] and r["predicted_clause"]]
    print(
        json.dumps(
            {
                "thresholds": thresholds,
                "all_rows": compare(rows, thresholds, args.n_boot),
                "decided_rows": compare(decided, thresholds, args.n_boot),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
