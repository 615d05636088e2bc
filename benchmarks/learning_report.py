"""The report of benchmarks/bench_learning.py: each model's answers (as stored JSON) turned into CUAD match, detection
F1, margins chosen on the calibration questions, paired tests against base and the gap's AUROC.

Dagster-free; imported by bench_learning.py (run that, not this).
"""

from __future__ import annotations

from selfinstruct.answering import Answer
from selfinstruct.benchmark.abstain import choose_margin, with_margin
from selfinstruct.benchmark.methods import answer_rows, bm25_answers
from selfinstruct.benchmark.summary import summarize_methods
from selfinstruct.core.stats import auroc, mcnemar, paired_bootstrap, paired_stat_bootstrap


def dump_answer(a: Answer) -> dict:
    return {"has_clause": a.has_clause, "text": a.text, "score": a.score, "n": a.method_detail.get("n_candidates", 0)}


def load_answer(d: dict) -> Answer:
    return Answer(d["has_clause"], d["text"], None, None, d["score"], {"n_candidates": d["n"]})


def report(data: dict, scored: dict, n_boot: int) -> dict:
    ev, rows, rules = data["eval"], [], {}
    for name, s in scored.items():
        rule = choose_margin(data["cal"], [load_answer(a) for a in s["cal"]])
        rules[name] = rule
        rows += answer_rows(
            name, ev, [with_margin(load_answer(a), rule["margin"]) for a in s["eval"]], s["eval_s_per_q"]
        )
        rows += answer_rows(name + "_quote", ev, [load_answer(a) for a in s["eval"]], s["eval_s_per_q"])
    if "judge_rerank" in scored:  # the judge's own threshold (calibrated on train-split contracts) instead
        own = scored["judge_rerank"]["judge_threshold"] - 1e-9
        rules["judge_rerank_own"] = {"margin": own}
        answers = [with_margin(load_answer(a), own) for a in scored["judge_rerank"]["eval"]]
        rows += answer_rows("judge_rerank_own", ev, answers, scored["judge_rerank"]["eval_s_per_q"])
    rows += answer_rows("bm25_sentence", ev, bm25_answers(ev, [q["contexts"] for q in ev]), 0.0)
    summary = {s["method"]: s for s in summarize_methods(rows, baseline="base_quote", n_boot=n_boot)}
    paired = {}
    by = {}
    for r in rows:
        by.setdefault(r["method"], {})[r["question_id"]] = r
    pairs = [(a, "base" if not a.endswith("_quote") and a != "bm25_sentence" else "base_quote") for a in by]
    pairs += [(a, "base" + a[a.index("_lead") :]) for a in by if "_lead" in a and not a.startswith("base_")]
    for a, ref in [(a, ref) for a, ref in pairs if a not in ("base", "base_quote") and ref in by]:
        qids = [q for q in by[a] if by[a][q]["cuad_match"] is not None]
        x, y = [int(by[a][q]["cuad_match"]) for q in qids], [int(by[ref][q]["cuad_match"]) for q in qids]
        boot = paired_bootstrap(x, y, [by[a][q]["contract_id"] for q in qids], n_boot=n_boot)
        paired[f"{a} - {ref}"] = {**boot, "mcnemar_p": mcnemar(x, y)["p_value"], "n": len(qids)}
    return {"summary": summary, "margins": rules, "paired": paired, "gap_auroc": gap_auroc(data, scored, n_boot)}


def gap_auroc(data: dict, scored: dict, n_boot: int) -> dict:
    """How well each model's gap (best window over "No such clause.") ranks answerable above unanswerable eval
    questions, threshold-free: AUROC, and each model minus base with an interval clustered by contract."""
    ev = data["eval"]
    truth = [int(bool(q["gold_answers"])) for q in ev]
    gaps = {m: [a["score"] for a in s["eval"]] for m, s in scored.items()}  # judge_rerank: its best window
    out = {}
    for m, g in gaps.items():
        if m == "base" or "base" not in gaps:
            out[m] = {"auroc": auroc(g, truth)}
            continue
        base = gaps["base"]
        res = paired_stat_bootstrap(
            lambda at, x=base: auroc([x[i] for i in at], [truth[i] for i in at]),
            lambda at, x=g: auroc([x[i] for i in at], [truth[i] for i in at]),
            len(ev),
            [q["contract_id"] for q in ev],
            n_boot,
        )
        out[m] = {"auroc": auroc(g, truth), **{k: res[k] for k in ("diff", "low", "high", "p_value", "n_clusters")}}
    return out
