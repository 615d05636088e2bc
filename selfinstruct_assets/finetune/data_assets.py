"""Training data for the adapters: SFT rows (reviewers' corrections among them), candidate answers, AI feedback."""

import json
from typing import Literal

import dagster as dg
import dspy
import polars as pl
from pydantic import Field

from resources.llm import LLMResource
from resources.project import BaseModelResource, ChromaResource, EmbedderResource
from selfinstruct.answering import NO_CLAUSE, candidate_spans, snap
from selfinstruct.answering.windows import N_WINDOWS
from selfinstruct.core.parallel import thread_map
from selfinstruct.corpus.questions import benchmark_questions
from selfinstruct.finetune.distill import judge_picked_rows
from selfinstruct.finetune.examples import (
    categories_without_gold,
    cuad_train_rows,
    no_clause_count,
    sft_rows,
    unanswerable_questions,
)
from selfinstruct.finetune.human_gold import human_questions, with_human_rows
from selfinstruct.finetune.preferences import grade_rows
from selfinstruct.finetune.prompts import fit_passages, quote_prompt
from selfinstruct.finetune.window_rows import window_row, window_sft_rows
from selfinstruct.judging.judges import judge_factuality
from selfinstruct.judging.trained_judge import agreement_report
from selfinstruct.rag.evaluate import sample_questions
from selfinstruct_assets.constants import DUCKDB_POOL, FINETUNE
from selfinstruct_assets.locations import recorded_path, required_path
from selfinstruct_assets.retrievers import retriever_for


class WindowConfig(dg.Config):
    k: int = Field(3, ge=1, description="chunks retrieved into a prompt")
    n_windows: int = Field(N_WINDOWS, ge=2, description="windows per prompt (as benchmark_scores.n_windows)")
    max_context_chars: int = Field(
        2000, ge=1, description="excerpt characters per prompt (keeps prompt + answer within the trainers' max_length)"
    )


class PromptConfig(WindowConfig):
    prompt: Literal["windows", "chunks"] = Field(
        "windows",
        description="'windows': the candidate windows the scorer compares (gold window + the hardest wrong ones); "
        "'chunks': the retrieved chunks within max_context_chars (the earlier rows, ~2x the tokens)",
    )
    no_clause_share: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="share of rows whose target is 'No such clause.' (train-split questions CUAD marks unanswerable)",
    )


class SftDatasetConfig(PromptConfig):
    gold_rows: int = Field(
        0,
        ge=0,
        description="extra rows from answerable train-split questions labelled by CUAD itself (human labels, "
        "like the seed set), categories in turn",
    )
    judge_rows: int = Field(
        0,
        ge=0,
        description="distillation: rows from train-split questions whose target is rerank_judge's pick among the "
        "windows (or 'No such clause.' when it accepts none), no gold label read; needs rerank_judge",
    )
    labelled: bool = Field(
        True,
        description="keep the labelled rows (seed, synthetic, gold_rows, CUAD's no-clause questions and human gold "
        "rows); False with judge_rows > 0 trains on the judge's picks alone",
    )


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE, deps=["vector_index", "retriever_model", "rerank_judge"])
def sft_dataset(
    context: dg.AssetExecutionContext,
    config: SftDatasetConfig,
    cuad_contracts: pl.DataFrame,
    cuad_annotations: pl.DataFrame,
    seed_qa: pl.DataFrame,
    synthetic_qa: pl.DataFrame,
    human_feedback: pl.DataFrame,
    embedder: EmbedderResource,
    chroma: ChromaResource,
) -> dg.Output[pl.DataFrame]:
    """Quote prompt and its target (the verbatim clause, or 'No such clause.') from seed QA, synthetic QA, reviewers'
    corrections and unanswerable questions of train-split contracts; the clause's passage is always in its prompt."""
    contracts = {r["contract_id"]: r for r in cuad_contracts.to_dicts()}
    annotations = cuad_annotations.to_dicts()
    qa = [{"source": "seed", "id": r["seed_id"], **r} for r in seed_qa.to_dicts()] + [
        {"source": "synthetic", "id": r["qa_id"], **r} for r in synthetic_qa.to_dicts()
    ]
    # Enough candidates for the share; sft_rows takes as many as the verbatim QA rows call for.
    qa += cuad_train_rows(annotations, contracts, config.gold_rows)
    none = unanswerable_questions(annotations, contracts, "train", no_clause_count(len(qa), config.no_clause_share))
    retrieve, which = retriever_for(context.instance, embedder, chroma)
    if not config.labelled:
        qa, none = [], []
    if config.prompt == "windows":
        rows, stats = window_sft_rows(
            qa, none, contracts, retrieve, config.k, config.n_windows, config.no_clause_share, config.max_context_chars
        )
        if config.judge_rows:
            picked, judged = _judge_rows(context, annotations, contracts, retrieve, config)
            rows += picked
            stats |= {f"judge_{k}": v for k, v in judged.items()}
    else:
        rows, stats = sft_rows(
            qa, none, contracts, retrieve, config.k, config.max_context_chars, config.no_clause_share
        )
    # A reviewer's gold replaces the rows of its question (human feedback outranks); window prompts only.
    questions, human = human_questions(human_feedback.to_dicts(), contracts)
    skip = "labelled=False" if not config.labelled else None if config.prompt == "windows" else "prompt 'chunks'"
    rows, added = with_human_rows(rows, questions, retrieve, config.k, config.n_windows, config.max_context_chars, skip)
    out = [
        {"rejected": None, **{k: v for k, v in r.items() if k != "prompt"}, "prompt_json": json.dumps(r["prompt"])}
        for r in rows
    ]
    missing = categories_without_gold(annotations, contracts)
    if missing:
        # Documented fallback: such a category gets only "No such clause." rows; nothing teaches its clause.
        context.log.warning(f"{len(missing)} categories have no gold clause in the train split: {', '.join(missing)}")
    return dg.Output(
        pl.DataFrame(out, schema=SFT_SCHEMA),
        metadata={
            "dagster/row_count": len(out),
            "seed_rows": sum(r["source"] == "seed" for r in out),
            "synthetic_rows": sum(r["source"] == "synthetic" for r in out),
            "cuad_train_rows": sum(r["source"] == "cuad_train" for r in out),
            "judge_rows": sum(r["source"] == "judge" for r in out),
            "human_rows": sum(r["source"] == "human" for r in out),
            "prompt": config.prompt,
            "mean_prompt_chars": round(sum(len(r["prompt_json"]) for r in out) / max(1, len(out))),
            **stats,
            **added,
            **{f"feedback_{k}": v for k, v in human.items()},
            "retriever": which,
            "categories_without_train_gold": ", ".join(missing) or "none",
        },
    )


def _judge_rows(context, annotations: list[dict], contracts: dict, retrieve, config: SftDatasetConfig):
    """Distillation rows: rerank_judge's picks on train-split questions it is asked without their labels."""
    from selfinstruct.judging.trained_judge import TrainedJudge

    path = recorded_path(context.instance, "rerank_judge")
    if path is None:
        raise dg.Failure("sft_dataset.judge_rows > 0 needs rerank_judge: materialise it first, or set judge_rows 0")
    asked = [
        {k: q[k] for k in ("question_id", "contract_id", "question")}
        for q in benchmark_questions(annotations, contracts, config.judge_rows, split="train", seed=11)
    ]
    contexts = [retrieve(q["question"], q["contract_id"], config.k) for q in asked]
    return judge_picked_rows(asked, contexts, TrainedJudge(path), config.n_windows, config.max_context_chars)


SFT_SCHEMA = {
    "example_id": pl.Utf8,
    "source": pl.Utf8,
    "contract_id": pl.Utf8,
    "question": pl.Utf8,
    "answer": pl.Utf8,
    "rejected": pl.Utf8,
    "prompt_json": pl.Utf8,
}


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
