"""The trained answer judge, trained as the `answer_judge` asset trains it, on held-out candidates and real answers.

    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/bench_judge.py --examples 480 \
        --answers HOME/selfinstruct.duckdb --save-scores /work/runs/judge_scores.json

Calls `fit_answer_judge` (train-split rows, a threshold calibrated on other train-split contracts, agreement on
eval-split candidates) with `--examples` label-balanced training rows, then judges every benchmark_answers row of
the `--answers` file's latest benchmark run against the label the benchmark compares its judge column with (CUAD
match on answerable questions, "said no clause" on unanswerable ones), gold clauses rebuilt from the corpus; per
method and overall. `--save-scores` writes each row's (method, question_id, contract_id, score, right) for a paired
comparison of two judges on the same answers (benchmarks/paired_judges.py), e.g. two versions of the judge's
training rows. Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from selfinstruct.corpus.cuad import load_cuad
from selfinstruct.corpus.source import cuad_uri_from_env, open_cuad_source
from selfinstruct.judging.trained_judge import TrainedJudge
from training.judge import JudgeTrainSettings, fit_answer_judge


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--examples", type=int, default=480, help="label-balanced training rows (the asset's max_examples)")
    p.add_argument("--max-heldout", type=int, default=600)
    p.add_argument("--workdir", default="/tmp/bench_judge")
    p.add_argument("--answers", help="a project DuckDB file: also judge its latest benchmark_answers")
    p.add_argument("--save-scores", help="write per-row judge scores of --answers here (JSON)")
    args = p.parse_args()
    t0 = time.perf_counter()
    corpus = load_cuad(open_cuad_source(cuad_uri_from_env(), Path("/tmp/selfinstruct-cache")))
    m = fit_answer_judge(
        corpus.annotations,
        corpus.contracts,
        Path(args.workdir) / f"n{args.examples}",
        JudgeTrainSettings(max_examples=args.examples, learning_rate=args.lr),
        6,
        args.max_heldout,
    )
    print({k: m[k] for k in ("examples", "positives", "steps", "final_loss", "seconds", "threshold")}, flush=True)
    print("held-out candidates:", m["heldout"], flush=True)
    if args.answers:
        report, rows = judge_real_answers(TrainedJudge(m["model_dir"]), args.answers, corpus)
        print("real answers:", json.dumps(report), flush=True)
        if args.save_scores:
            Path(args.save_scores).write_text(
                json.dumps({"threshold": m["threshold"], "heldout": m["heldout"], "real": report, "rows": rows})
            )
    print("seconds", round(time.perf_counter() - t0))


def judge_real_answers(judge, duckdb_file: str, corpus) -> tuple[dict, list[dict]]:
    """Agreement, kappa and AUROC of `judge` on the latest benchmark run's answers (per method and overall), and
    each row's score and label."""
    import duckdb

    from selfinstruct.corpus.questions import question_row
    from selfinstruct.finetune.judging import judge_agreement, right, trained_scores, with_judge

    with duckdb.connect(duckdb_file, read_only=True) as conn:
        cur = conn.execute(
            "select * from benchmark_answers where run_id = (select run_id from benchmark_answers "
            "order by created_at desc limit 1)"
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    contracts = {c["contract_id"]: c for c in corpus.contracts}
    by_key = {(a["contract_id"], a["category"]): a for a in corpus.annotations}
    golds = {
        r["question_id"]: question_row(by_key[(r["contract_id"], r["category"])], contracts[r["contract_id"]], 0)[
            "gold_answers"
        ]
        if r["has_clause"]
        else []
        for r in rows
    }
    judged = with_judge(rows, trained_scores(judge, rows, golds))
    report = {"all": {"n": len(judged), **judge_agreement(judged, judge.threshold)}}
    for method in sorted({r["method"] for r in judged}):
        mine = [r for r in judged if r["method"] == method]
        report[method] = {"n": len(mine), **judge_agreement(mine, judge.threshold)}
    split = {c["contract_id"]: c["split"] for c in corpus.contracts}
    if leaked := sorted({r["contract_id"] for r in rows if split.get(r["contract_id"]) != "eval"}):
        raise SystemExit(f"answers of non-eval contracts {leaked[:3]}: the judge may have trained on them")
    return report, [
        {
            "method": r["method"],
            "question_id": r["question_id"],
            "contract_id": r["contract_id"],
            "has_clause": bool(r["has_clause"]),
            "predicted_clause": bool(r["predicted_clause"]),
            "score": r["judge_score"],
            "right": right(r),
        }
        for r in judged
    ]


if __name__ == "__main__":
    main()
