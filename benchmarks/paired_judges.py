"""Two answer judges on the same real answers: Cohen's kappa and AUROC against CUAD match, and their difference.

    .venv/bin/python benchmarks/paired_judges.py /work/runs/judge_old.json /work/runs/judge_new.json

Reads two `bench_judge.py --save-scores` files made on one benchmark run's answers. Each judge says "right" at its
own calibrated threshold. Reported on all rows and on the rows the cross-encoder decides (an answerable question
answered with a quotation: "No such clause." rows and unanswerable questions are graded by rule, identically for
both judges). Each kappa and the difference (b - a) carry a 95 % interval from a bootstrap over contracts (questions of one
contract move together) and the share of resamples on the other side of zero, two-sided.
"""

import argparse
import json

import numpy as np

from selfinstruct.core.stats import auroc, cohen_kappa


def _metrics(rows: list[dict], thresholds: tuple[float, float]) -> list[float | None]:
    out = []
    for j, t in enumerate(thresholds):
        said = [int(r["scores"][j] >= t) for r in rows]
        truth = [int(r["right"] >= 0.5) for r in rows]
        out += [cohen_kappa(said, truth), auroc([r["scores"][j] for r in rows], truth)]
    return out


def compare(rows: list[dict], thresholds: tuple[float, float], n_boot: int = 2000, seed: int = 0) -> dict:
    """kappa and AUROC of judges a and b, and b - a with a contract-clustered bootstrap interval and p."""
    ka, aa, kb, ab = _metrics(rows, thresholds)
    by_contract: dict[str, list[dict]] = {}
    for r in rows:
        by_contract.setdefault(r["contract_id"], []).append(r)
    groups = list(by_contract.values())
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[float]] = {"kappa": [], "auroc": []}
    kappas: dict[str, list[float]] = {"a": [], "b": []}
    for _ in range(n_boot):
        sample = [r for i in rng.integers(0, len(groups), len(groups)) for r in groups[i]]
        ka_, aa_, kb_, ab_ = _metrics(sample, thresholds)
        for name, k in (("a", ka_), ("b", kb_)):
            if k is not None:
                kappas[name].append(k)
        if None not in (ka_, kb_):
            diffs["kappa"].append(kb_ - ka_)
        if None not in (aa_, ab_):
            diffs["auroc"].append(ab_ - aa_)
    out = {"n": len(rows), "contracts": len(groups), "kappa_a": ka, "kappa_b": kb, "auroc_a": aa, "auroc_b": ab}
    for name, reps in kappas.items():  # each judge's own kappa interval, from the same resamples
        if reps:
            out[f"kappa_{name}_ci"] = [round(float(q), 3) for q in np.quantile(reps, [0.025, 0.975])]
    for name, point in (
        ("kappa", None if None in (ka, kb) else kb - ka),
        ("auroc", None if None in (aa, ab) else ab - aa),
    ):
        d = np.asarray(diffs[name])
        if point is None or not len(d):
            continue
        p = min(1.0, max(2 * min((d <= 0).mean(), (d >= 0).mean()), 1 / (len(d) + 1)))  # resolution: 1/(n+1)
        out[f"{name}_diff"] = [
            round(point, 3),
            round(float(np.quantile(d, 0.025)), 3),
            round(float(np.quantile(d, 0.975)), 3),
            round(float(p), 4),
        ]
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
