"""Candidate answers for preference training and the AI feedback that grades them: rag_responses answers
train-split questions with the base and SFT models, ai_feedback scores each answer with the trained (or LM) judge."""

import json
from typing import Literal

import dagster as dg
import dspy
import polars as pl
from pydantic import Field

from resources.llm import LLMResource
from resources.project import BaseModelResource, ChromaResource, EmbedderResource
from selfinstruct.answering import NO_CLAUSE, candidate_spans, snap
from selfinstruct.core.parallel import thread_map
from selfinstruct.finetune.examples import no_clause_count, unanswerable_questions
from selfinstruct.finetune.preferences import grade_rows
from selfinstruct.finetune.prompts import fit_passages, quote_prompt
from selfinstruct.finetune.window_rows import window_row
from selfinstruct.judging.judges import judge_factuality
from selfinstruct.judging.trained_judge import agreement_report
from selfinstruct.rag.evaluate import sample_questions
from selfinstruct_assets.constants import DUCKDB_POOL, FINETUNE
from selfinstruct_assets.finetune.data_assets import PromptConfig
from selfinstruct_assets.locations import recorded_path, required_path
from selfinstruct_assets.retrievers import retriever_for


class ResponsesConfig(PromptConfig):
    n_questions: int = Field(
        24, ge=1, description="train-split answerable questions answered (plus no_clause_share unanswerable ones)"
    )
    n_samples: int = Field(
        2, ge=0, description="sampled answers of the SFT model per question, beside the greedy base and SFT answers"
    )
    temperature: float = Field(0.8, gt=0, description="sampling temperature of those answers")


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["sft_adapter", "vector_index", "retriever_model"])
def rag_responses(
    context: dg.AssetExecutionContext,
    config: ResponsesConfig,
    cuad_contracts: pl.DataFrame,
    cuad_annotations: pl.DataFrame,
    llm: LLMResource,
    base_model: BaseModelResource,
    embedder: EmbedderResource,
    chroma: ChromaResource,
) -> dg.Output[pl.DataFrame]:
    """Candidate answers per train-split question (base, SFT greedy and sampled), each generated on the quote
    prompt and snapped to a verbatim window of its excerpts (or 'No such clause.')."""
    contracts = {r["contract_id"]: r for r in cuad_contracts.to_dicts()}
    annotations = cuad_annotations.to_dicts()
    questions = sample_questions(annotations, contracts, "train", config.n_questions, seed=1)
    questions += unanswerable_questions(
        annotations, contracts, "train", no_clause_count(len(questions), config.no_clause_share), seed=1
    )
    retrieve, which = retriever_for(context.instance, embedder, chroma)
    if config.prompt == "windows":
        # The windows the scorer compares, the gold one among them, so chosen and rejected are both readable.
        made = [
            window_row(
                q["question"],
                q["gold_answers"],
                retrieve(q["question"], q["contract_id"], config.k),
                config.n_windows,
                config.max_context_chars,
            )
            for q in questions
        ]
        prompts = [m["prompt"] for m in made]
        passages = [[w.text for w in m["windows"]] for m in made]
        spans = [m["windows"] for m in made]
        golds = [m["answer"] for m in made]
    else:
        passages = [
            fit_passages(retrieve(q["question"], q["contract_id"], config.k), config.max_context_chars)
            for q in questions
        ]
        prompts = [quote_prompt(q["question"], p, config.max_context_chars) for q, p in zip(questions, passages)]
        spans = [candidate_spans(p) for p in passages]
        golds = [(q["gold_answers"] or [NO_CLAUSE])[0] for q in questions]
    base, sft = base_model.dir(), required_path(context.instance, "sft_adapter", "adapter_path")
    models = [("base", llm.local_lm(base)), ("sft", llm.local_lm(base, sft))]
    models += [
        (f"sft_sample_{i}", llm.local_lm(base, sft, sample_temperature=config.temperature, seed=i))
        for i in range(1, config.n_samples + 1)
    ]
    rows = []
    for origin, lm in models:
        for q, p, ps, sp, gold, reply in zip(questions, prompts, passages, spans, golds, lm.generate_batch(prompts)):
            # Snapping (not span scoring) because one generation costs less than scoring ~300 windows.
            a = snap(reply, sp)
            rows.append(
                {
                    "candidate_id": f"{q['question_id']}:{origin}",
                    "question_id": q["question_id"],
                    "contract_id": q["contract_id"],
                    "question": q["question"],
                    "gold_answer": gold,
                    "gold_answers": q["gold_answers"],
                    "prompt_json": json.dumps(p),
                    "passages_json": json.dumps(ps),
                    "origin": origin,
                    "reply": reply,
                    "answer": a.text if a.has_clause else NO_CLAUSE,
                }
            )
    return dg.Output(
        pl.DataFrame(rows, schema=RESPONSE_SCHEMA),
        metadata={
            "dagster/row_count": len(rows),
            "questions": len(questions),
            "no_clause_questions": sum(not q["gold_answers"] for q in questions),
            "candidates_per_question": len(models),
            "candidates": "generated, then snapped to a verbatim window",
            "no_clause_answers": sum(r["answer"] == NO_CLAUSE for r in rows),
            "retriever": which,
        },
    )


RESPONSE_SCHEMA = {
    "candidate_id": pl.Utf8,
    "question_id": pl.Utf8,
    "contract_id": pl.Utf8,
    "question": pl.Utf8,
    "gold_answer": pl.Utf8,
    "gold_answers": pl.List(pl.Utf8),
    "prompt_json": pl.Utf8,
    "passages_json": pl.Utf8,
    "origin": pl.Utf8,
    "reply": pl.Utf8,
    "answer": pl.Utf8,
}


class FeedbackConfig(dg.Config):
    judge: Literal["trained", "lm"] = Field(
        "trained",
        description="'trained': the answer_judge cross-encoder; "
        "'lm': the LM judge role (free-text verdicts, the fallback)",
    )
    judge_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="grade = w * judge score + (1 - w) * correctness "
        "(CUAD match, or 'no clause' when there is no gold)",
    )


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["answer_judge"])
def ai_feedback(
    context: dg.AssetExecutionContext, config: FeedbackConfig, rag_responses: pl.DataFrame, llm: LLMResource
) -> dg.Output[pl.DataFrame]:
    """The trained judge (or the LM judge) scores every candidate; CUAD match and token F1 sit beside it."""
    rows = rag_responses.to_dicts()
    if config.judge == "trained":
        verdicts, described, threshold = _trained_scores(context, rows)
    else:
        verdicts, described, threshold = _lm_scores(rows, llm), llm.describe("judge"), 0.5
    out = pl.DataFrame(grade_rows(rows, verdicts, config.judge_weight), schema=FEEDBACK_SCHEMA)
    # How far the judge agrees with correctness on these very answers (model answers, not the training windows).
    report = agreement_report(out["judge_score"].to_list(), out["correct"].to_list(), threshold) if out.height else {}
    return dg.Output(
        out,
        metadata={
            "dagster/row_count": out.height,
            "judge": described,
            "judge_missing": int(out["judge_score"].is_null().sum()) if out.height else 0,
            "judge_vs_correct_kappa": report.get("kappa"),
            "judge_vs_correct_agreement": report.get("agreement"),
            "mean_grade": float(out["grade"].mean()) if out.height else None,
        },
    )


FEEDBACK_SCHEMA = {
    "candidate_id": pl.Utf8,
    "judge_score": pl.Float64,
    "judge_critique": pl.Utf8,
    "judge_missing_reason": pl.Utf8,
    "token_f1": pl.Float64,
    "cuad_match": pl.Float64,
    "correct": pl.Float64,
    "grade": pl.Float64,
}


def _trained_scores(context: dg.AssetExecutionContext, rows: list[dict]):
    from selfinstruct.judging.judges import JudgeVerdict
    from selfinstruct.judging.trained_judge import TrainedJudge, judge_rows

    path = recorded_path(context.instance, "answer_judge")
    if path is None or not path.exists():
        # Documented fallback: grades are correctness alone (grade() with no judge score) until a judge exists.
        context.log.warning("answer_judge has published no model; grading by correctness alone")
        return [None] * len(rows), "none (answer_judge not materialised): correctness only", 0.5
    judge = TrainedJudge(path)
    verdicts = [JudgeVerdict(s, False, None, "", via="trained") for s in judge_rows(judge, rows)]
    return verdicts, f"trained: {path}", judge.threshold


def _lm_scores(rows: list[dict], llm: LLMResource) -> list:
    judge = llm.lm("judge")
    with dspy.context(**llm.context("judge")):
        return thread_map(lambda r: judge_factuality(judge, r["question"], r["gold_answer"], r["answer"]), rows)
