"""Preference pairs for DPO and ORPO: graded candidate answers, SFT window rows and reviewers' feedback."""

from typing import Literal

import dagster as dg
import polars as pl
from pydantic import Field

from resources.project import ChromaResource, EmbedderResource
from selfinstruct.finetune.human_gold import human_questions, pair_inputs
from selfinstruct.finetune.preferences import build_preference_pairs, window_candidates
from selfinstruct.finetune.window_rows import window_pairs
from selfinstruct_assets.constants import DUCKDB_POOL, FINETUNE
from selfinstruct_assets.finetune.data_assets import WindowConfig
from selfinstruct_assets.retrievers import retriever_for


class PairsConfig(WindowConfig):
    """k, n_windows and max_context_chars shape the prompt of a reviewer's gold question that no candidate asked."""

    margin: float = Field(
        0.3, gt=0, le=1, description="a rejected answer is graded at least this far below the chosen one"
    )
    chosen: Literal["gold", "best"] = Field(
        "gold",
        description="'gold' (the CUAD clause or 'No such clause.'; a reviewer's gold on a question no candidate "
        "asked) or 'best' (the best-graded candidate)",
    )
    max_pairs_per_question: int = Field(2, ge=1, description="pairs kept per question (human-rated and worst first)")
    window_pairs: bool = Field(
        True,
        description="also one pair per sft_dataset window row: its target window (or 'No such clause.') over the "
        "hardest wrong window BM25 picks among the same excerpts",
    )


@dg.asset(pool=DUCKDB_POOL, group_name=FINETUNE)
def preference_pairs(
    context: dg.AssetExecutionContext,
    config: PairsConfig,
    rag_responses: pl.DataFrame,
    ai_feedback: pl.DataFrame,
    human_feedback: pl.DataFrame,
    sft_dataset: pl.DataFrame,
    cuad_contracts: pl.DataFrame,
    embedder: EmbedderResource,
    chroma: ChromaResource,
) -> dg.Output[pl.DataFrame]:
    """prompt / chosen (the gold window or 'No such clause.') / rejected (the hardest wrong window of the same
    excerpts, or a judged-wrong model answer); human ratings outrank AI grades, and a reviewer's correction is a
    gold also where no candidate asked its question; train-split contracts only."""
    graded = rag_responses.join(ai_feedback.select("candidate_id", "grade"), on="candidate_id").to_dicts()
    windows = window_candidates(graded)
    cands = graded + windows
    feedback = human_feedback.to_dicts()
    contracts = {r["contract_id"]: r for r in cuad_contracts.select("contract_id", "text", "split").to_dicts()}
    questions, human = human_questions(feedback, contracts)
    rows, golds = pair_inputs(
        questions,
        cands,
        lambda: retriever_for(context.instance, embedder, chroma)[0],
        config.k,
        config.n_windows,
        config.max_context_chars,
    )
    # Rows of another source (the inbox also takes "ai") are graded answers, never a gold, as before.
    rows += [r for r in feedback if r["split"] == "train" and r["source"] != "human"]
    pairs, stats = build_preference_pairs(
        cands, rows, config.margin, config.chosen, config.max_pairs_per_question, golds
    )
    if config.window_pairs:
        seen = {p["pair_id"] for p in pairs}
        extra = [p for p in window_pairs(sft_dataset.to_dicts()) if p["pair_id"] not in seen]
        pairs += extra
        stats["pairs_from_sft_windows"] = len(extra)
    stats["human_eval_split_ignored"] = sum(r["split"] != "train" for r in feedback)
    stats["window_rejects_available"] = len(windows)
    stats["pairs_rejecting_window"] = sum(p["rejected_source"] == "bm25_window" for p in pairs)
    stats["pairs_chosen_human"] = sum(p["chosen_source"] == "human" for p in pairs)
    stats |= {f"feedback_{k}": v for k, v in human.items()}
    return dg.Output(pl.DataFrame(pairs, schema=PAIR_SCHEMA), metadata={"dagster/row_count": len(pairs), **stats})


PAIR_SCHEMA = {
    "pair_id": pl.Utf8,
    "question_id": pl.Utf8,
    "contract_id": pl.Utf8,
    "question": pl.Utf8,
    "prompt_json": pl.Utf8,
    "chosen": pl.Utf8,
    "rejected": pl.Utf8,
    "chosen_grade": pl.Float64,
    "rejected_grade": pl.Float64,
    "margin": pl.Float64,
    "chosen_source": pl.Utf8,
    "rejected_source": pl.Utf8,
}
