"""Standard and optimised DSPy RAG programs, and their evaluation on held-out contracts."""

from typing import Literal

import dagster as dg
import dspy
import polars as pl
from pydantic import Field

from resources.llm import LLMResource
from resources.project import ChromaResource, EmbedderResource, ProjectHome
from resources.s3 import ArtifactsResource
from selfinstruct.core.artifacts import program_path
from selfinstruct.core.markdown import md_table
from selfinstruct.rag.evaluate import evaluate_program, sample_questions, summarize
from selfinstruct.rag.optimize import compile_program
from selfinstruct.rag.program import ContractRAG, load_program, save_program
from selfinstruct.retrieval.retriever import make_retriever
from selfinstruct_assets.constants import DUCKDB_POOL, RAG
from selfinstruct_assets.locations import recorded_path, required_path

SUMMARY_COLUMNS = ["method", "n", "judge_score", "cuad_match", "token_f1", "exact_match", "judge_cuad_agreement"]


class RagConfig(dg.Config):
    k: int = Field(3, ge=1, description="chunks retrieved per question")
    n_train_questions: int = Field(16, ge=1, description="train-split questions the optimiser compiles on")
    optimizer: Literal["bootstrap", "mipro"] = Field(
        "bootstrap", description="'bootstrap' (BootstrapFewShot) or 'mipro' (MIPROv2)"
    )
    max_demos: int = Field(2, ge=0, description="few-shot demos the optimiser may add")


@dg.asset(pool=DUCKDB_POOL, group_name=RAG, deps=["vector_index"])
def rag_program(
    config: RagConfig,
    home: ProjectHome,
    embedder: EmbedderResource,
    chroma: ChromaResource,
    artifacts: ArtifactsResource,
) -> dg.MaterializeResult:
    """Standard DSPy RAG (retrieve k chunks of the question's contract, then answer), saved as DSPy JSON."""
    program = ContractRAG(make_retriever(embedder, chroma), k=config.k)
    path = save_program(program, program_path(home.root(), "rag_program"))
    return dg.MaterializeResult(metadata={"path": _publish(artifacts, path, "rag_program"), "k": config.k, "demos": 0})


def _publish(artifacts: ArtifactsResource, path, name: str) -> str:
    """The program's location in the artifact store (the file itself when the store is the home folder)."""
    return artifacts.store().put_file(path, program_path("", name))


@dg.asset(pool=DUCKDB_POOL, group_name=RAG, deps=[rag_program])
def optimized_rag_program(
    context: dg.AssetExecutionContext,
    config: RagConfig,
    home: ProjectHome,
    cuad_contracts: pl.DataFrame,
    cuad_annotations: pl.DataFrame,
    llm: LLMResource,
    embedder: EmbedderResource,
    chroma: ChromaResource,
    artifacts: ArtifactsResource,
) -> dg.MaterializeResult:
    """The RAG program compiled by DSPy prompt optimisation on train-split questions only."""
    contracts = {r["contract_id"]: r for r in cuad_contracts.to_dicts()}
    train = sample_questions(cuad_annotations.to_dicts(), contracts, "train", config.n_train_questions)
    base = load_program(required_path(context.instance, "rag_program"), make_retriever(embedder, chroma), config.k)
    with dspy.context(**llm.context("generator")):
        compiled = compile_program(base, train, llm.lm("judge"), config.optimizer, config.max_demos)
    path = save_program(compiled, program_path(home.root(), "optimized_rag_program"))
    return dg.MaterializeResult(
        metadata={
            "path": _publish(artifacts, path, "optimized_rag_program"),
            "optimizer": config.optimizer,
            "train_questions": len(train),
            "train_contracts": len({q["contract_id"] for q in train}),
            "demos": len(compiled.generate.demos),
        }
    )


class RagEvalConfig(dg.Config):
    n_questions: int = Field(32, ge=1, description="held-out questions answered by each program (the post scored 32)")
    k: int = Field(3, ge=1, description="chunks retrieved per question")
    judge: Literal["trained", "lm", "none"] = Field(
        "trained",
        description="'trained': answer_judge's cross-encoder scores (question, gold clause, answer), one "
        "batched CPU call, no LM call (falls back to 'lm' while answer_judge has published no "
        "model); 'lm': the LM judge role, two free-text LM calls per answer (factuality and "
        "retrieval, verdicts parsed from its reply); 'none': no judge, metrics only",
    )


def _rag_judge(context: dg.AssetExecutionContext, kind: str, llm: LLMResource):
    """(judge for evaluate_program, what judged it, agreement threshold); 'trained' falls back to the LM judge
    under the same condition as ai_feedback: answer_judge recorded no path, or its folder is gone."""
    if kind == "none":
        return None, "none", 0.5
    if kind == "trained":
        path = recorded_path(context.instance, "answer_judge")
        if path is not None and path.exists():
            from selfinstruct.judging.trained_judge import TrainedJudge

            judge = TrainedJudge(path)
            return judge, f"trained: {path}", judge.threshold
        context.log.warning("answer_judge has published no model; rag_eval falls back to the LM judge")
        return llm.lm("judge"), f"lm: {llm.describe('judge')} (fallback: answer_judge has published no model)", 0.5
    return llm.lm("judge"), f"lm: {llm.describe('judge')}", 0.5


@dg.multi_asset(
    pool=DUCKDB_POOL,
    group_name=RAG,
    deps=[rag_program, optimized_rag_program, "answer_judge"],
    outs={
        "rag_eval": dg.AssetOut(
            description="One row per (method, held-out question): answer, judge and metric scores."
        ),
        "rag_eval_summary": dg.AssetOut(description="Per-method means of rag_eval and judge/CUAD-match agreement."),
    },
)
def rag_eval(
    context: dg.AssetExecutionContext,
    config: RagEvalConfig,
    cuad_contracts: pl.DataFrame,
    cuad_annotations: pl.DataFrame,
    llm: LLMResource,
    embedder: EmbedderResource,
    chroma: ChromaResource,
):
    """Both RAG programs answer eval-split (held-out) questions; the judge (config.judge) and CUAD metrics score
    each answer."""
    contracts = {r["contract_id"]: r for r in cuad_contracts.to_dicts()}
    questions = sample_questions(cuad_annotations.to_dicts(), contracts, "eval", config.n_questions)
    retrieve = make_retriever(embedder, chroma)
    judge, judged_by, threshold = _rag_judge(context, config.judge, llm)
    rows = []
    with dspy.context(**llm.context("generator")):
        for method, asset in (("standard_rag", "rag_program"), ("optimized_rag", "optimized_rag_program")):
            program = load_program(required_path(context.instance, asset), retrieve, config.k)
            rows += evaluate_program(method, program, questions, judge)
    summary = summarize(rows, threshold)
    # Typed judge columns: a judge that leaves one all-None ('trained': retrieval_judged; 'none') keeps its type.
    yield dg.Output(
        pl.DataFrame(rows, infer_schema_length=None, schema_overrides=JUDGE_COLUMNS),
        output_name="rag_eval",
        metadata={"dagster/row_count": len(rows), "questions": len(questions), "judge": judged_by},
    )
    yield dg.Output(
        pl.DataFrame(summary, infer_schema_length=None, schema_overrides=SUMMARY_JUDGE_COLUMNS),
        output_name="rag_eval_summary",
        metadata={
            "summary": dg.MetadataValue.md(md_table(summary, SUMMARY_COLUMNS)),
            "generator": llm.describe("generator"),
            "judge": judged_by,
            "judge_threshold": threshold,
        },
    )


JUDGE_COLUMNS = {
    "judge_score": pl.Float64,
    "judge_flagged": pl.Boolean,
    "judge_missing_reason": pl.Utf8,
    "judge_critique": pl.Utf8,
    "retrieval_judged": pl.Float64,
}
SUMMARY_JUDGE_COLUMNS = {"judge_score": pl.Float64, "judge_cuad_agreement": pl.Float64, "judge_cuad_kappa": pl.Float64}
