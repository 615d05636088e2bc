"""Answer held-out questions with a RAG program and score every answer (judges + deterministic metrics).

Dagster-free. LMs are bound by the caller's `dspy.context`; the judge is passed explicitly so the generator and
the judge can be different models. The judge is one of:

    evaluate_program(method, program, questions, trained_judge)   # anything with .score(): answer_judge's
                                                                    # cross-encoder, one batched call, no LM
    evaluate_program(method, program, questions, judge_lm)        # a dspy LM: judge_factuality + judge_retrieval,
                                                                    # two free-text LM calls per answer
    evaluate_program(method, program, questions, None)            # no judge: metrics only
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Protocol, cast

import dspy

from selfinstruct.core.metrics import cuad_match, exact_match, token_f1
from selfinstruct.core.parallel import thread_map
from selfinstruct.judging.judges import judge_factuality, judge_retrieval
from selfinstruct.judging.trained_judge import TrainedJudge, agreement_report, judge_rows


class AnswerScorer(Protocol):
    """A trained judge (evaluation.trained_judge.TrainedJudge): P(the answer is right) per (question, answer, golds)."""

    def score(self, questions: Sequence[str], candidates: Sequence[str], golds: Sequence | None = None): ...


def sample_questions(
    annotations: Sequence[dict],
    contracts: dict[str, dict],
    split: str,
    n: int,
    max_answer_chars: int = 300,
    seed: int = 0,
) -> list[dict]:
    """Up to `n` answerable questions of `split` contracts with short located gold spans, in a stable order."""
    rows = []
    for a in annotations:
        c = contracts.get(a["contract_id"])
        if c is None or c["split"] != split or a["is_impossible"] or not len(a["answer_starts"]):
            continue
        golds = [c["text"][s:e].strip() for s, e in zip(a["answer_starts"], a["answer_ends"])]
        golds = [g for g in golds if len(g) <= max_answer_chars]
        if golds:
            key = hashlib.sha256(f"{seed}:{a['contract_id']}:{a['category']}".encode()).hexdigest()
            rows.append(
                {
                    "question_id": key[:16],
                    "contract_id": a["contract_id"],
                    "category": a["category"],
                    "question": a["question"],
                    "gold_answers": golds,
                    "_k": key,
                }
            )
    rows.sort(key=lambda r: r["_k"])
    return [{k: v for k, v in r.items() if k != "_k"} for r in rows[:n]]


def _unjudged(reason: str) -> dict:
    return {
        "judge_score": None,
        "judge_flagged": False,
        "judge_missing_reason": reason,
        "judge_critique": "",
        "retrieval_judged": None,
    }


def score_answer(question: dict, answer: str, context: list[str], judge_lm: dspy.BaseLM | None) -> dict:
    golds = question["gold_answers"]
    row = {
        "cuad_match": cuad_match(answer, golds),
        "token_f1": token_f1(answer, golds),
        "exact_match": exact_match(answer, golds),
    }
    if judge_lm is None or not golds:  # a question with no gold clause (CUAD's is_impossible) has nothing to judge by
        return {**row, **_unjudged("no judge" if judge_lm is None else "no gold clause")}
    fact = judge_factuality(judge_lm, question["question"], golds[0], answer)
    ret = judge_retrieval(judge_lm, question["question"], "\n\n".join(context), golds[0])
    return {
        **row,
        "judge_score": fact.score,
        "judge_flagged": fact.flagged,
        "judge_missing_reason": fact.missing_reason,
        "judge_critique": fact.critique,
        "retrieval_judged": ret.score,
    }


def trained_judgements(judge: AnswerScorer, questions: Sequence[dict], answers: Sequence[str]) -> list[dict]:
    """The judge columns from a trained judge: its P(right) of (question, gold clauses, answer), one batched
    `judge_rows` call over the answerable questions; no LM call, no critique, no retrieval verdict."""
    ask = [i for i, q in enumerate(questions) if q["gold_answers"]]
    scores = (
        judge_rows(
            cast(TrainedJudge, judge),  # judge_rows calls only .score, which AnswerScorer has
            [
                {
                    "question": questions[i]["question"],
                    "gold_answers": questions[i]["gold_answers"],
                    "answer": answers[i],
                }
                for i in ask
            ],
        )
        if ask
        else []
    )
    out = [_unjudged("no gold clause") for _ in questions]
    for i, s in zip(ask, scores):
        out[i] = {
            "judge_score": s,
            "judge_flagged": False,
            "judge_missing_reason": None,
            "judge_critique": "",
            "retrieval_judged": None,
        }
    return out


def evaluate_program(
    method: str,
    program: dspy.Module,
    questions: Sequence[dict],
    judge: AnswerScorer | dspy.BaseLM | None,
    threads: int = 8,
) -> list[dict]:
    """One row per question: the answer, its latency, and every score.

    `judge`: a dspy LM (the LM judge: two calls per answer), a trained judge (anything else with `.score`: one
    batched cross-encoder call, no LM) or None (no judge). Questions are answered on `threads` threads (batched
    generation on the local backend), so a row's latency is that of its call inside a batch, not of a lone
    request."""

    def answer(q: dict) -> tuple:
        t0 = time.perf_counter()
        pred = program(question=q["question"], contract_id=q["contract_id"])
        return pred, time.perf_counter() - t0

    answered = thread_map(answer, list(questions), threads)
    trained = judge is not None and not isinstance(judge, dspy.BaseLM)
    if trained and not callable(getattr(judge, "score", None)):
        raise TypeError(f"judge must be a dspy LM, a trained judge with .score() or None; got {type(judge).__name__}")
    judge_lm = None if trained else judge
    scored = thread_map(
        lambda qp: score_answer(qp[0], qp[1][0].answer, qp[1][0].context, judge_lm),
        list(zip(questions, answered)),
        threads,
    )
    if trained:
        judged = trained_judgements(cast(AnswerScorer, judge), questions, [pred.answer for pred, _ in answered])
        scored = [{**s, **j} for s, j in zip(scored, judged)]
    rows = []
    for q, (pred, latency), scores in zip(questions, answered, scored):
        rows.append(
            {
                "method": method,
                "question_id": q["question_id"],
                "contract_id": q["contract_id"],
                "category": q["category"],
                "question": q["question"],
                "gold_answer": (q["gold_answers"] or [""])[0],
                "answer": pred.answer,
                "answer_parsed": bool(pred.parsed),
                "latency_s": latency,
                **scores,
            }
        )
    return rows


def summarize(rows: Sequence[dict], threshold: float = 0.5) -> list[dict]:
    """Per-method means (judge mean over scored rows only) and judge/CUAD agreement, the judge saying "right" at
    score >= `threshold` (a trained judge's calibrated cut; 0.5 for the LM judge)."""
    out = []
    for method in sorted({r["method"] for r in rows}):
        rs = [r for r in rows if r["method"] == method]
        judged = [r["judge_score"] for r in rs if r["judge_score"] is not None]
        agree = agreement_report([r["judge_score"] for r in rs], [r["cuad_match"] for r in rs], threshold)
        out.append(
            {
                "method": method,
                "n": len(rs),
                "judge_score": sum(judged) / len(judged) if judged else None,
                "judge_missing": len(rs) - len(judged),
                "cuad_match": sum(r["cuad_match"] for r in rs) / len(rs),
                "token_f1": sum(r["token_f1"] for r in rs) / len(rs),
                "exact_match": sum(r["exact_match"] for r in rs) / len(rs),
                "mean_latency_s": sum(r["latency_s"] for r in rs) / len(rs),
                "judge_cuad_agreement": agree.get("agreement"),
                "judge_cuad_kappa": agree.get("kappa"),
            }
        )
    return out
