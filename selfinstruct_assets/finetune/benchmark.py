"""Score RAG and fine-tuned models on the same held-out questions, in one comparable table.

Dagster-free. `answer_questions` runs a local model (base or base + adapter) on the fine-tuning prompt
format; `score_rows` adds judge and CUAD metrics; `summarize_methods` reduces rows to one line per method
with `improvement_pct` against standard RAG, as in the post: (score - standard) / standard * 100.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import dspy

from ..evaluation.parallel import thread_map
from ..rag.evaluate import score_answer
from ..rag.program import Retrieve
from .prompts import fit_passages, rag_messages


def prompts_for(questions: Sequence[dict], retrieve: Retrieve, k: int, max_context_chars: int) -> list[list[dict]]:
    """The fine-tuning chat prompt for each question: its k retrieved excerpts within `max_context_chars`.

    The one prompt builder for candidate answers and the benchmark, so both ask in the format models learned.
    """
    return [rag_messages(q["question"], fit_passages(retrieve(q["question"], q["contract_id"], k), max_context_chars))
            for q in questions]


def answer_questions(method: str, lm, questions: Sequence[dict], prompts: Sequence[list[dict]]) -> list[dict]:
    """One row per question: the model's greedy answer to the prompt, and the batch's seconds per answer."""
    t0 = time.perf_counter()
    answers = lm.generate_batch(list(prompts))
    per_answer = (time.perf_counter() - t0) / max(1, len(questions))
    return [{"method": method, "question_id": q["question_id"], "contract_id": q["contract_id"],
             "question": q["question"], "gold_answer": q["gold_answers"][0], "answer": a, "latency_s": per_answer,
             "_golds": q["gold_answers"], "_context": [m["content"] for m in p[1:]]}
            for q, a, p in zip(questions, answers, prompts)]


def score_rows(rows: Sequence[dict], judge_lm: dspy.BaseLM | None, threads: int = 8) -> list[dict]:
    def score(r: dict) -> dict:
        q = {"question": r["question"], "gold_answers": r["_golds"]}
        s = score_answer(q, r["answer"], r["_context"], judge_lm)
        return {**{k: v for k, v in r.items() if not k.startswith("_")}, **s}

    return thread_map(score, list(rows), threads)


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def summarize_methods(rows: Sequence[dict], baseline: str = "standard_rag") -> list[dict]:
    """Per-method judge/CUAD/F1/EM means and `improvement_pct` (judge) and `cuad_ratio` versus `baseline`."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        out.append({"method": method, "n": len(rs), "judge_score": _mean([r["judge_score"] for r in rs]),
                    "judge_missing": sum(r["judge_score"] is None for r in rs),
                    "cuad_match": _mean([r["cuad_match"] for r in rs]), "token_f1": _mean([r["token_f1"] for r in rs]),
                    "exact_match": _mean([r["exact_match"] for r in rs]),
                    "mean_latency_s": _mean([r["latency_s"] for r in rs])})
    base = next((o for o in out if o["method"] == baseline), None)
    for o in out:
        bj, bc = (base or {}).get("judge_score"), (base or {}).get("cuad_match")
        o["improvement_pct"] = (o["judge_score"] - bj) / bj * 100 if bj and o["judge_score"] is not None else None
        o["cuad_ratio"] = o["cuad_match"] / bc if bc else None
    return out
