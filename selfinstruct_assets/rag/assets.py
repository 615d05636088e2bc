"""Standard and optimised DSPy RAG programs, and their evaluation on held-out contracts."""

import dagster as dg
import dspy
import polars as pl

from resources.llm import LLMResource
from resources.project import ChromaResource, EmbedderResource, ProjectHome

from ..constants import DUCKDB_POOL, RAG
from .evaluate import evaluate_program, sample_questions, summarize
from .optimize import compile_program
from .program import ContractRAG, load_program, save_program


def _retriever(embedder: EmbedderResource, chroma: ChromaResource):
    emb = embedder.get()
    store = chroma.store(emb)

    def retrieve(question: str, contract_id: str, k: int) -> list[str]:
        [hits] = store.search(emb.embed([question]), [contract_id], k)
        return [h["text"] for h in hits]

    return retrieve


class RagConfig(dg.Config):
    k: int = 3  # chunks retrieved per question
    n_train_questions: int = 16  # train-split questions the optimiser compiles on
    optimizer: str = "bootstrap"  # 'bootstrap' (BootstrapFewShot) or 'mipro' (MIPROv2)
    max_demos: int = 2  # few-shot demos the optimiser may add


@dg.asset(pool=DUCKDB_POOL, group_name=RAG, deps=["vector_index"])
def rag_program(config: RagConfig, home: ProjectHome, embedder: EmbedderResource,
                chroma: ChromaResource) -> dg.MaterializeResult:
    """Standard DSPy RAG (retrieve k chunks of the question's contract, then answer), saved as DSPy JSON."""
    program = ContractRAG(_retriever(embedder, chroma), k=config.k)
    path = save_program(program, home.subdir("artifacts") / "rag_program.json")
    return dg.MaterializeResult(metadata={"path": str(path), "k": config.k, "demos": 0})


@dg.asset(pool=DUCKDB_POOL, group_name=RAG, deps=[rag_program])
def optimized_rag_program(config: RagConfig, home: ProjectHome, cuad_contracts: pl.DataFrame,
                          cuad_annotations: pl.DataFrame, llm: LLMResource, embedder: EmbedderResource,
                          chroma: ChromaResource) -> dg.MaterializeResult:
    """The RAG program compiled by DSPy prompt optimisation on train-split questions only."""
    contracts = {r["contract_id"]: r for r in cuad_contracts.to_dicts()}
    train = sample_questions(cuad_annotations.to_dicts(), contracts, "train", config.n_train_questions)
    base = load_program(home.subdir("artifacts") / "rag_program.json", _retriever(embedder, chroma), config.k)
    with dspy.context(**llm.context("generator")):
        compiled = compile_program(base, train, llm.lm("judge"), config.optimizer, config.max_demos)
    path = save_program(compiled, home.subdir("artifacts") / "optimized_rag_program.json")
    return dg.MaterializeResult(metadata={
        "path": str(path), "optimizer": config.optimizer, "train_questions": len(train),
        "train_contracts": len({q["contract_id"] for q in train}), "demos": len(compiled.generate.demos)})


class RagEvalConfig(dg.Config):
    n_questions: int = 32  # held-out questions answered by each program (the post scored 32)
    k: int = 3


@dg.multi_asset(pool=DUCKDB_POOL, group_name=RAG, deps=[rag_program, optimized_rag_program], outs={
    "rag_eval": dg.AssetOut(description="One row per (method, held-out question): answer, judge and metric scores."),
    "rag_eval_summary": dg.AssetOut(description="Per-method means of rag_eval and judge/CUAD-match agreement."),
})
def rag_eval(config: RagEvalConfig, home: ProjectHome, cuad_contracts: pl.DataFrame, cuad_annotations: pl.DataFrame,
             llm: LLMResource, embedder: EmbedderResource, chroma: ChromaResource):
    """Both RAG programs answer eval-split (held-out) questions; judges and CUAD metrics score each answer."""
    contracts = {r["contract_id"]: r for r in cuad_contracts.to_dicts()}
    questions = sample_questions(cuad_annotations.to_dicts(), contracts, "eval", config.n_questions)
    retrieve = _retriever(embedder, chroma)
    art = home.subdir("artifacts")
    rows = []
    with dspy.context(**llm.context("generator")):
        for method, name in (("standard_rag", "rag_program.json"), ("optimized_rag", "optimized_rag_program.json")):
            rows += evaluate_program(method, load_program(art / name, retrieve, config.k), questions, llm.lm("judge"))
    summary = summarize(rows)
    yield dg.Output(pl.DataFrame(rows, infer_schema_length=None), output_name="rag_eval",
                    metadata={"dagster/row_count": len(rows), "questions": len(questions)})
    yield dg.Output(pl.DataFrame(summary, infer_schema_length=None), output_name="rag_eval_summary",
                    metadata={"summary": dg.MetadataValue.md(_md(summary)), "generator": llm.describe("generator"),
                              "judge": llm.describe("judge")})


def _md(rows: list[dict]) -> str:
    cols = ["method", "n", "judge_score", "cuad_match", "token_f1", "exact_match", "judge_cuad_agreement"]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows])
