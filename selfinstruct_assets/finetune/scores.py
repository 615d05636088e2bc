"""`benchmark_scores` and `benchmark_answers`: every method on the same held-out questions, appended per run."""

import json
import time
from datetime import datetime, timezone

import dagster as dg
import dspy
import polars as pl
from dagster_duckdb import DuckDBResource

from resources.llm import LLMResource
from resources.local_lm import adapter_hash
from resources.project import BaseModelResource, ChromaResource, EmbedderResource, ProjectHome
from selfinstruct_core.artifacts import serving_root
from selfinstruct_core.markdown import md_table

from ..constants import DUCKDB_POOL, FINETUNE
from ..locations import trained_adapters
from ..rag.evaluate import sample_questions
from ..retrieval.retriever import make_retriever
from ..serving import served_adapter_dir
from ..tables import append_rows
from .benchmark import answer_questions, prompts_for, score_rows, summarize_methods
from .plots import bar_chart_md

SCORE_COLUMNS = ["method", "n", "judge_score", "cuad_match", "token_f1", "exact_match", "improvement_pct", "cuad_ratio"]
# Explicit schemas: a first run whose column is all null must not fix that column's type for every later run.
_F, _S, _I = pl.Float64, pl.Utf8, pl.Int64
SCORES_SCHEMA = {"method": _S, "n": _I, "judge_score": _F, "judge_missing": _I, "cuad_match": _F, "token_f1": _F,
                 "exact_match": _F, "mean_latency_s": _F, "improvement_pct": _F, "cuad_ratio": _F, "model": _S,
                 "adapter_id": _S, "judge": _S, "data_versions": _S, "run_id": _S, "created_at": pl.Datetime("us")}
ANSWERS_SCHEMA = {"run_id": _S, "created_at": pl.Datetime("us"), "method": _S, "question_id": _S, "contract_id": _S,
                  "question": _S, "gold_answer": _S, "answer": _S, "cuad_match": _F, "token_f1": _F,
                  "exact_match": _F, "judge_score": _F, "latency_s": _F}
INPUTS = ("cuad_contracts", "sft_dataset", "preference_pairs", "sft_adapter", "dpo_adapter", "orpo_adapter",
          "grpo_adapter", "optimized_rag_program")


class BenchmarkConfig(dg.Config):
    k: int = 3
    max_context_chars: int = 2000  # as in the fine-tuning prompts


def _data_versions(context: dg.AssetExecutionContext) -> str:
    out = {}
    for name in INPUTS:
        ev = context.instance.get_latest_materialization_event(dg.AssetKey(name))
        out[name] = ev.run_id[:8] if ev else None
    return json.dumps(out)


# The frames read as inputs are deps of both tables too: a multi-asset's inputs belong to its specs.
UPSTREAM = ["cuad_contracts", "cuad_annotations", "rag_eval", "sft_adapter", "dpo_adapter", "orpo_adapter",
            "grpo_adapter"]


@dg.multi_asset(pool=DUCKDB_POOL, group_name=FINETUNE, specs=[
    dg.AssetSpec("benchmark_scores", deps=UPSTREAM, description="One row per method and run: mean scores."),
    dg.AssetSpec("benchmark_answers", deps=UPSTREAM, description="One row per method, question and run."),
])
def benchmark_scores(context: dg.AssetExecutionContext, config: BenchmarkConfig, home: ProjectHome,
                     cuad_contracts: pl.DataFrame, cuad_annotations: pl.DataFrame, rag_eval: pl.DataFrame,
                     llm: LLMResource, base_model: BaseModelResource, embedder: EmbedderResource,
                     chroma: ChromaResource, duckdb: DuckDBResource):
    """Standard and optimised RAG (from rag_eval), the base model and each adapter on rag_eval's held-out
    questions; one row per method appended to `benchmark_scores`, one per answer to `benchmark_answers`."""
    contracts = {r["contract_id"]: r for r in cuad_contracts.to_dicts()}
    ids = set(rag_eval["question_id"])
    questions = [q for q in sample_questions(cuad_annotations.to_dicts(), contracts, "eval", len(contracts) * 100)
                 if q["question_id"] in ids]
    prompts = prompts_for(questions, make_retriever(embedder, chroma), config.k, config.max_context_chars)
    rows = [r for r in rag_eval.to_dicts() if r["method"] in ("standard_rag", "optimized_rag")]
    models = {"base": None, **trained_adapters(context.instance)}
    served = served_adapter_dir(serving_root(home.root()))
    if served is not None:  # the gate compares candidates with the served adapter on this very run's questions
        models["serving"] = served
    base_dir = base_model.dir()
    ids_by_method = {m: "" for m in ("standard_rag", "optimized_rag", "base")}
    t0 = time.perf_counter()
    with dspy.context(**llm.context("judge")):
        for method, path in models.items():
            fresh = answer_questions(method, llm.local_lm(base_dir, path), questions, prompts)
            rows += score_rows(fresh, llm.lm("judge"))
            ids_by_method[method] = adapter_hash(path)[:12] if path else ""
            context.log.info(f"benchmark_scores: {method} answered and scored {len(fresh)} questions")
    summary = summarize_methods(rows)
    stamp, versions = datetime.now(timezone.utc).replace(tzinfo=None), _data_versions(context)
    table = pl.DataFrame([{**s, "model": llm.describe("generator") if s["method"].endswith("_rag")
                           else f"local:{base_dir.name}", "adapter_id": ids_by_method.get(s["method"], ""),
                           "judge": llm.describe("judge"), "data_versions": versions, "run_id": context.run_id,
                           "created_at": stamp} for s in summary], schema=SCORES_SCHEMA)
    answers = pl.DataFrame([{**r, "run_id": context.run_id, "created_at": stamp} for r in rows], schema=ANSWERS_SCHEMA)
    # Both tables keep every run (appended), so they are written here rather than replaced by the IO manager.
    append_rows(duckdb, "benchmark_scores", table)
    append_rows(duckdb, "benchmark_answers", answers)
    labels = [s["method"] for s in summary]
    chart = bar_chart_md(labels, {"judge": [s["judge_score"] for s in summary],
                                  "CUAD match": [s["cuad_match"] for s in summary]}, "held-out scores")
    yield dg.MaterializeResult(asset_key="benchmark_scores", metadata={
        "questions": len(questions), "methods": ", ".join(labels), "seconds": round(time.perf_counter() - t0, 1),
        "scores": dg.MetadataValue.md(md_table(summary, SCORE_COLUMNS) + "\n\n" + chart),
        "dagster/row_count": table.height})
    yield dg.MaterializeResult(asset_key="benchmark_answers", metadata={
        "dagster/row_count": answers.height, "run_id": context.run_id})
