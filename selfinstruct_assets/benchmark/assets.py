"""`benchmark_scores` and `benchmark_answers`: every method on the same held-out questions, appended per run."""

import json
import time
from datetime import UTC, datetime
from typing import Literal

import dagster as dg
import dspy
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import Field

from resources.llm import LLMResource
from resources.local_lm import LORA_LOADING
from resources.model_folders import adapter_hash, model_hash
from resources.project import BaseModelResource, ChromaResource, EmbedderResource, ProjectHome
from resources.s3 import ArtifactsResource
from selfinstruct import answering
from selfinstruct.answering import SpanScorer
from selfinstruct.answering.windows import N_WINDOWS
from selfinstruct.benchmark import methods
from selfinstruct.benchmark.answer_cache import TABLE as CACHE_TABLE
from selfinstruct.benchmark.answer_cache import AnswerCache, answer_key, code_hash, file_hash, model_key
from selfinstruct.benchmark.calibration import calibration_questions, same_weights
from selfinstruct.benchmark.ceiling import candidate_ceiling
from selfinstruct.benchmark.run import benchmark_rows, rag_replies, rerank_rows
from selfinstruct.benchmark.summary import summarize_methods
from selfinstruct.core.artifacts import serving_root
from selfinstruct.core.known import existing_tables
from selfinstruct.core.tables import append_tables
from selfinstruct.corpus.questions import benchmark_questions, counts
from selfinstruct.finetune.judging import judge_agreement, lm_scores, trained_scores, with_judge
from selfinstruct.judging.trained_judge import TrainedJudge
from selfinstruct.rag.program import load_program
from selfinstruct.serving import served_adapter_dir
from selfinstruct_assets.benchmark.table import ANSWERS_SCHEMA, CACHE_SCHEMA, SCORES_SCHEMA, report
from selfinstruct_assets.constants import BENCHMARK, DUCKDB_POOL
from selfinstruct_assets.locations import recorded_path, trained_adapters
from selfinstruct_assets.retrievers import retriever_for

INPUTS = (
    "cuad_contracts",
    "sft_dataset",
    "preference_pairs",
    "sft_adapter",
    "dpo_adapter",
    "orpo_adapter",
    "grpo_adapter",
    "optimized_rag_program",
)


class BenchmarkConfig(dg.Config):
    n_questions: int = Field(
        123,
        ge=1,
        description="held-out questions (eval split), 3 per CUAD category by default; "
        "the benchmark profile uses >= 400",
    )
    k: int = Field(3, ge=1, description="chunks retrieved per question (as the RAG programs)")
    n_windows: int = Field(
        N_WINDOWS, ge=0, description="candidate windows BM25 keeps for LM scoring per question (0: all)"
    )
    prompt: Literal["windows", "chunks"] = Field(
        "windows", description="what a local model reads: the candidate windows (as sft_dataset teaches) or the chunks"
    )
    margin: float | None = Field(
        None,
        description="a local model says 'no clause' unless its best window beats 'No such clause.' by this "
        "(per-token mean log-prob); None: chosen per model on n_calibration train-split questions",
    )
    n_calibration: int = Field(
        80, ge=4, description="train-split questions (none an SFT row) on which each local model's margin is chosen"
    )
    judge: Literal["trained", "lm", "none"] = Field(
        "trained",
        description="judge column: 'trained' (answer_judge's cross-encoder; None until it is "
        "materialised), 'lm' (the LM judge, slow on a local judge) or 'none'",
    )
    oracle: bool = Field(True, description="add the oracle_retrieval row (base model given the gold clause's chunk)")
    pmi: bool = Field(
        False,
        description="local models choose by PMI (log P(span|question) - log P(span|no "
        "question)) instead of the per-token mean; twice the cost",
    )
    n_boot: int = Field(2000, ge=100, description="bootstrap resamples for intervals and paired tests")


def _trained_rows(duckdb: DuckDBResource) -> list[dict]:
    """sft_dataset's (contract_id, question) pairs, none when it was never materialised (a base-only benchmark)."""
    with duckdb.get_connection() as conn:
        if "sft_dataset" not in existing_tables(lambda sql: conn.execute(sql).fetchall()):
            return []
        got = conn.execute("select contract_id, question from sft_dataset").fetchall()
    return [{"contract_id": c, "question": q} for c, q in got]


def _stored_answers(duckdb: DuckDBResource) -> list[tuple]:
    """(model_key, answer_key, value_json) of every answer an earlier run computed (none on a first run)."""
    with duckdb.get_connection() as conn:
        if CACHE_TABLE not in existing_tables(lambda sql: conn.execute(sql).fetchall()):
            return []
        return conn.execute(f"select model_key, answer_key, value_json from {CACHE_TABLE}").fetchall()


def _model_keys(ids: dict, base_dir, config: BenchmarkConfig) -> dict:
    """Each local model's cache key: base weights, adapter weights, scoring settings and the answering code."""
    base, code = model_hash(base_dir), code_hash(answering, methods)
    settings = {
        "n_windows": config.n_windows,
        "prompt": config.prompt,
        "pmi": config.pmi,
        "code": code,
        "lora": LORA_LOADING,
    }
    return {m: model_key(base, a, **settings) for m, a in ids.items()}


def _finite(rules: dict) -> dict:
    """JSON has no -inf: a model that always quotes is recorded with margin None."""
    return {
        m: {
            k: (None if isinstance(v, float) and v != v or v in (float("inf"), float("-inf")) else v)
            for k, v in r.items()
        }
        for m, r in rules.items()
    }


def _data_versions(context: dg.AssetExecutionContext) -> str:
    return json.dumps(
        {
            n: (ev.run_id[:8] if (ev := context.instance.get_latest_materialization_event(dg.AssetKey(n))) else None)
            for n in INPUTS
        }
    )


def _scorer(llm: LLMResource, base_dir, adapter) -> SpanScorer:
    tok, model, _ = llm.local_lm(base_dir, adapter).load()
    return SpanScorer(model, tok)


def _judged(context, kind: str, rows: list[dict], questions: list[dict], llm: LLMResource) -> tuple[list, str, float]:
    """Rows with the judge column, what judged them (or why nothing did), and the score that reads as "right"."""
    if kind == "lm":
        return with_judge(rows, lm_scores(llm.lm("judge"), rows)), llm.describe("judge"), 0.5
    if kind == "trained" and (path := recorded_path(context.instance, "answer_judge")) is not None:
        golds, judge = {q["question_id"]: q["gold_answers"] for q in questions}, TrainedJudge(path)
        return with_judge(rows, trained_scores(judge, rows, golds)), f"trained:{path.name}", judge.threshold
    return with_judge(rows, None), "answer_judge not materialised" if kind == "trained" else "none", 0.5


UPSTREAM = [
    "cuad_contracts",
    "cuad_annotations",
    "sft_dataset",
    "rag_eval",
    "sft_adapter",
    "dpo_adapter",
    "orpo_adapter",
    "grpo_adapter",
    "rag_program",
    "optimized_rag_program",
    "answer_judge",
    "rerank_judge",
    "retriever_model",
]


@dg.multi_asset(
    pool=DUCKDB_POOL,
    group_name=BENCHMARK,
    specs=[
        dg.AssetSpec(
            "benchmark_scores", deps=UPSTREAM, description="One row per method and run: scores, 95 % intervals."
        ),
        dg.AssetSpec("benchmark_answers", deps=UPSTREAM, description="One row per method, question and run."),
    ],
)
def benchmark_scores(
    context: dg.AssetExecutionContext,
    config: BenchmarkConfig,
    home: ProjectHome,
    cuad_contracts: pl.DataFrame,
    cuad_annotations: pl.DataFrame,
    rag_eval: pl.DataFrame,
    llm: LLMResource,
    base_model: BaseModelResource,
    embedder: EmbedderResource,
    chroma: ChromaResource,
    duckdb: DuckDBResource,
    artifacts: ArtifactsResource,
):
    """Every method quotes a clause or says there is none, on the same stratified held-out questions and chunks."""
    contracts = {r["contract_id"]: r for r in cuad_contracts.to_dicts()}
    questions = benchmark_questions(cuad_annotations.to_dicts(), contracts, config.n_questions)
    retrieve, which = retriever_for(context.instance, embedder, chroma)  # the retriever training rows used
    contexts = [retrieve(q["question"], q["contract_id"], config.k) for q in questions]
    cal = calibration_questions(cuad_annotations.to_dicts(), contracts, _trained_rows(duckdb), config.n_calibration)
    calibration = (cal, [retrieve(q["question"], q["contract_id"], config.k) for q in cal])
    models = {"base": None, **trained_adapters(context.instance)}
    if (served := served_adapter_dir(serving_root(home.root()), store=artifacts.store())) is not None:
        models["serving"] = served  # the gate pairs candidates with the served adapter on this run's questions
    ids = {m: adapter_hash(p)[:12] if p else "" for m, p in models.items()}
    aliases = same_weights(ids)
    base_dir, t0 = base_model.dir(), time.perf_counter()
    scorers = {m: (lambda p=p: _scorer(llm, base_dir, p)) for m, p in models.items() if m not in aliases}
    cache, keys = AnswerCache(_stored_answers(duckdb)), _model_keys(ids, base_dir, config)
    rules: dict = {}
    with dspy.context(**llm.context("generator")):
        replies = {}
        for method, asset in (("standard_rag", "rag_program"), ("optimized_rag", "optimized_rag_program")):
            known = {r["question_id"]: r["answer"] for r in rag_eval.to_dicts() if r["method"] == method}
            if (path := recorded_path(context.instance, asset)) is not None:
                program = load_program(path, retrieve, config.k)
                replies[method] = cache.values(
                    model_key(llm.describe("generator"), file_hash(path), k=config.k),
                    list(zip(questions, contexts)),
                    lambda todo, p=program, known=known: rag_replies(p, [q for q, _ in todo], known),
                    lambda pair: answer_key(*pair),
                )
        rows = benchmark_rows(
            questions,
            contexts,
            {c: r["text"] for c, r in contracts.items()},
            scorers,
            replies,
            config.n_windows,
            config.margin,
            context.log.info,
            config.oracle,
            config.pmi,
            config.prompt,
            calibration,
            aliases,
            rules,
            cache,
            keys,
        )
        if (rerank := recorded_path(context.instance, "rerank_judge")) is not None:
            extra, rules["judge_rerank"] = rerank_rows(
                TrainedJudge(rerank),
                questions,
                contexts,
                config.n_windows,
                config.margin,
                calibration,
                context.log.info,
            )
            rows += extra
        rows, judge_note, threshold = _judged(context, config.judge, rows, questions, llm)
    summary = summarize_methods(rows, n_boot=config.n_boot)
    stamp = datetime.now(UTC).replace(tzinfo=None)
    table = pl.DataFrame(
        [
            {
                **s,
                "model": llm.describe("generator")
                if s["method"].endswith("_rag")
                else ""
                if s["method"] == "bm25_sentence"
                else f"local:{base_dir.name}",
                "adapter_id": ids.get(s["method"], ""),
                "abstain_margin": _finite(rules).get(s["method"], {}).get("margin"),
                "judge": judge_note,
                "data_versions": _data_versions(context),
                "run_id": context.run_id,
                "created_at": stamp,
            }
            for s in summary
        ],
        schema=SCORES_SCHEMA,
    )
    answers = pl.DataFrame([{**r, "run_id": context.run_id, "created_at": stamp} for r in rows], schema=ANSWERS_SCHEMA)
    # Both tables keep every run, so they are appended here, in one transaction: scores never without answers.
    fresh = pl.DataFrame(cache.new_rows(), schema=CACHE_SCHEMA)
    append_tables(duckdb, {"benchmark_scores": table, "benchmark_answers": answers, CACHE_TABLE: fresh})
    yield dg.MaterializeResult(
        asset_key="benchmark_scores",
        metadata={
            **report(summary),
            **counts(questions),
            **candidate_ceiling(questions, contexts, config.n_windows),
            **judge_agreement(rows, threshold),
            "judge": judge_note,
            "retriever": which,
            "abstain_rules": dg.MetadataValue.json(_finite(rules)),
            "scored_once": ", ".join(f"{m} = {a}" for m, a in aliases.items()) or "none",
            **cache.report(),
            "calibration_questions": len(cal),
            "seconds": round(time.perf_counter() - t0, 1),
            "dagster/row_count": table.height,
        },
    )
    yield dg.MaterializeResult(
        asset_key="benchmark_answers", metadata={"dagster/row_count": answers.height, "run_id": context.run_id}
    )
