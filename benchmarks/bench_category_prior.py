"""Clause detection from the category alone: how often train-split contracts have a clause of each CUAD category.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_category_prior.py --out benchmarks/results_category_prior.json

No LM. A question is answered "has a clause" when its category's rate among train-split contracts is at least a
cut, chosen on train-split calibration questions only (best detection F1). Question sets are bench_learning.py's:
calibration = train-split questions 401-500 (seed 7), eval = the first 200 eval-split questions (seed 0), both by
`benchmark_questions` (categories in turn, answerable and not alternating); and every (contract, category) pair
of the eval split ("natural": CUAD's own mix, about one in three answerable), its cut chosen on every pair of
the train split. Detection F1 against always-yes,
paired bootstrap clustered by contract (2,000 resamples).
"""

import argparse
import json
from pathlib import Path

import numpy as np
from bench_learning import load_corpus

from selfinstruct.core.stats import paired_stat_bootstrap
from selfinstruct.corpus.questions import benchmark_questions


def f1(truth: np.ndarray, said: np.ndarray) -> float | None:
    tp = float((truth & said).sum())
    if not truth.any() and not said.any():
        return None
    return 2 * tp / (truth.sum() + said.sum())


def rates(annotations, contracts) -> dict[str, float]:
    seen: dict[str, list[bool]] = {}
    for a in annotations:
        if contracts[a["contract_id"]]["split"] == "train":
            seen.setdefault(a["category"], []).append(not a["is_impossible"])
    return {c: sum(v) / len(v) for c, v in seen.items()}


def choose_cut(prior: dict[str, float], questions: list[dict]) -> dict:
    truth = np.array([q["has_clause"] for q in questions])
    p = np.array([prior[q["category"]] for q in questions])
    best = {"cut": 0.0, "f1": f1(truth, np.ones_like(truth)), "always_yes_f1": f1(truth, np.ones_like(truth))}
    for cut in sorted(set(p.tolist())):
        got = f1(truth, p >= cut)
        if got is not None and got > best["f1"] + 1e-12:
            best = {**best, "cut": cut, "f1": got}
    return best


def evaluate(prior: dict[str, float], cut: float, questions: list[dict]) -> dict:
    truth = np.array([q["has_clause"] for q in questions])
    said = np.array([prior[q["category"]] >= cut for q in questions])
    boot = paired_stat_bootstrap(
        lambda at: f1(truth[at], np.ones(len(at), bool)),
        lambda at: f1(truth[at], said[at]),
        len(questions),
        [q["contract_id"] for q in questions],
    )
    return {
        "n": len(questions),
        "answerable": int(truth.sum()),
        "contracts": len({q["contract_id"] for q in questions}),
        "always_yes_f1": round(f1(truth, np.ones_like(truth)), 4),
        "prior_f1": round(f1(truth, said), 4),
        "says_no": int((~said).sum()),
        "diff": round(boot["diff"], 4),
        "low": round(boot["low"], 4) if boot.get("low") is not None else None,
        "high": round(boot["high"], 4) if boot.get("high") is not None else None,
        "p_value": boot.get("p_value"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    corpus = load_corpus()
    contracts = {c["contract_id"]: c for c in corpus.contracts}
    prior = rates(corpus.annotations, contracts)
    cal = benchmark_questions(corpus.annotations, contracts, 500, split="train", seed=7)[400:]
    chosen = choose_cut(prior, cal)
    eval_q = benchmark_questions(corpus.annotations, contracts, 200)
    natural = {
        split: [
            {"contract_id": a["contract_id"], "category": a["category"], "has_clause": not a["is_impossible"]}
            for a in corpus.annotations
            if contracts[a["contract_id"]]["split"] == split
        ]
        for split in ("train", "eval")
    }
    chosen_natural = choose_cut(prior, natural["train"])
    report = {
        "chosen_on_calibration": chosen,
        "eval_200": evaluate(prior, chosen["cut"], eval_q),
        "chosen_on_train_natural": chosen_natural,
        "eval_natural": evaluate(prior, chosen_natural["cut"], natural["eval"]),
        "categories": len(prior),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
