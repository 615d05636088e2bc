"""The trained answer judge on held-out CUAD candidates: does it learn, and how well does it agree with CUAD match?

    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/bench_judge.py --lr 2e-4 --annotations 80

Trains the MiniLM cross-encoder (evaluation/trained_judge.py) on candidate windows of `--annotations` train-split
questions (6 per question, half CUAD matches), picks the threshold for the best kappa on 60 other train-split
questions, and scores 600 windows of eval-split questions. Candidates are sentence windows near and away from the
gold clause labelled by CUAD match: a proxy for model answers, not model answers.

Measured (2 CPU cores shared with other jobs, one run): 480 examples, 30 steps, lr 2e-4, 194 s of training:
held-out agreement 0.812, kappa 0.613, AUROC 0.873 (the calibrated threshold stayed 0.5). With lr 5e-5 the
loss stayed at ln 2 and kappa was 0.0 (AUROC 0.73; benchmarks/bench_retrievers.py): the fresh head needs 2e-4.

`--answers HOME/selfinstruct.duckdb` also judges real model answers: every benchmark_answers row of that file's
latest benchmark run, against the label the benchmark compares its judge column with (CUAD match on answerable
questions, "said no clause" on unanswerable ones), with the gold clauses rebuilt from the corpus.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from selfinstruct_assets.corpus.cuad import load_cuad
from selfinstruct_assets.corpus.source import cuad_uri_from_env, open_cuad_source
from selfinstruct_assets.evaluation.trained_judge import (JudgeTrainSettings, TrainedJudge, agreement_report,
                                                          build_judge_examples, calibrate_threshold, train_judge)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--annotations", type=int, default=80, help="train-split questions (6 candidates each)")
    p.add_argument("--workdir", default="/tmp/bench_judge")
    p.add_argument("--answers", help="a project DuckDB file: also judge its latest benchmark_answers")
    args = p.parse_args()
    t0 = time.perf_counter()
    corpus = load_cuad(open_cuad_source(cuad_uri_from_env(), Path("/tmp/selfinstruct-cache")))
    ev = {c["contract_id"] for c in corpus.contracts if c["split"] == "eval"}
    rng = random.Random(0)
    answerable = [a for a in corpus.annotations if not a["is_impossible"] and len(a["answer_starts"])]
    train_ann = [a for a in answerable if a["contract_id"] not in ev]
    rng.shuffle(train_ann)
    n = args.annotations
    train = build_judge_examples(train_ann[:n], corpus.contracts, seed=0, eval_contract_ids=ev)
    calib = build_judge_examples(train_ann[n:n + 60], corpus.contracts, seed=2)
    held = build_judge_examples(rng.sample([a for a in answerable if a["contract_id"] in ev], 150), corpus.contracts,
                                seed=1)
    held = rng.sample(held, min(600, len(held)))
    print(f"{len(train)} train, {len(calib)} calibration, {len(held)} held-out candidates", flush=True)
    m = train_judge(train, Path(args.workdir) / f"lr{args.lr}",
                    JudgeTrainSettings(max_examples=n * 6, batch_size=16, learning_rate=args.lr))
    print({k: m[k] for k in ("examples", "steps", "final_loss", "mean_loss", "seconds")}, flush=True)
    judge = TrainedJudge(m["model_dir"])

    def score(rows):
        return judge.score([e["question"] for e in rows], [e["candidate"] for e in rows],
                           [e["golds"] for e in rows]).tolist()

    t = calibrate_threshold(score(calib), [e["label"] for e in calib])
    held_scores, labels = score(held), [e["label"] for e in held]
    print("at 0.5:", agreement_report(held_scores, labels))
    print(f"at calibrated {t:.3f}:", agreement_report(held_scores, labels, t))
    if args.answers:
        print("real answers:", judge_real_answers(judge, args.answers, corpus), flush=True)
    print("seconds", round(time.perf_counter() - t0))


def judge_real_answers(judge, duckdb_file: str, corpus) -> dict:
    """Agreement, kappa and AUROC of `judge` on the latest benchmark run's answers (per method and overall)."""
    import duckdb

    from selfinstruct_assets.evaluation.questions import question_row
    from selfinstruct_assets.finetune.judging import judge_agreement, trained_scores, with_judge

    with duckdb.connect(duckdb_file, read_only=True) as conn:
        cur = conn.execute("select * from benchmark_answers where run_id = (select run_id from benchmark_answers "
                           "order by created_at desc limit 1)")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    contracts = {c["contract_id"]: c for c in corpus.contracts}
    by_key = {(a["contract_id"], a["category"]): a for a in corpus.annotations}
    golds = {r["question_id"]: question_row(by_key[(r["contract_id"], r["category"])], contracts[r["contract_id"]],
                                            0)["gold_answers"] if r["has_clause"] else [] for r in rows}
    judged = with_judge(rows, trained_scores(judge, rows, golds))
    report = {"all": {"n": len(judged), **judge_agreement(judged)}}
    for method in sorted({r["method"] for r in judged}):
        mine = [r for r in judged if r["method"] == method]
        report[method] = {"n": len(mine), **judge_agreement(mine)}
    return report


if __name__ == "__main__":
    main()
