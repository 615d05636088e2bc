"""Training data for the adapters: SFT rows (reviewers' corrections among them), and the prompt settings the
finetune group's data assets share. Candidate answers and their AI feedback are candidate_assets.py's."""

import json
from typing import Literal

import dagster as dg
import polars as pl
from pydantic import Field

from resources.project import ChromaResource, EmbedderResource
from selfinstruct.answering.windows import N_WINDOWS
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
from selfinstruct.finetune.window_rows import window_sft_rows
from selfinstruct_assets.constants import DUCKDB_POOL, FINETUNE
from selfinstruct_assets.locations import recorded_path
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
