"""The Chroma vector index of contract chunks and its retrieval evaluation."""

import time

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field, model_validator

from resources.project import ChromaResource, EmbedderResource
from selfinstruct.core.markdown import md_table
from selfinstruct.corpus.chunking import check_chunking, chunk_contracts
from selfinstruct.retrieval.evaluate import KS, compare_recall, eval_questions, rank_bm25, rank_dense, recall_rows
from selfinstruct.retrieval.hybrid import rank_hybrid
from selfinstruct.retrieval.memo import memoised
from selfinstruct.retrieval.model import model_embedder
from selfinstruct.retrieval.retriever import DEFAULT_RETRIEVER
from selfinstruct_assets.constants import DUCKDB_POOL, RETRIEVAL
from selfinstruct_assets.partitions import ADDED_CONTRACTS
from selfinstruct_assets.retrievers import trained_retriever


@dg.asset(pool=DUCKDB_POOL, group_name=RETRIEVAL, deps=["contract_chunks"])
def vector_index(
    context: dg.AssetExecutionContext, contract_chunks: pl.DataFrame, embedder: EmbedderResource, chroma: ChromaResource
) -> dg.MaterializeResult:
    """Chroma collection holding every chunk; only chunks with new ids are embedded."""
    emb = embedder.get()
    store = chroma.store(emb)
    # Contracts added through the inbox live in the same collection as their own partitions: not ours to remove.
    added = context.instance.get_dynamic_partitions(ADDED_CONTRACTS.name)
    t0 = time.perf_counter()
    stats = store.sync(contract_chunks.to_dicts(), scope={"contract_id": {"$nin": added}} if added else None)
    seconds = time.perf_counter() - t0
    context.log.info(f"index {store.collection_name}: +{stats.added} -{stats.removed} = {stats.total}")
    return dg.MaterializeResult(
        metadata={
            "count": stats.total,
            "added": stats.added,
            "removed": stats.removed,
            "embedder": emb.name,
            "collection": store.collection_name,
            "seconds": round(seconds, 2),
            "embed_seconds": round(stats.embed_seconds, 2),
            "chunks_per_s": round(stats.added / seconds, 1) if stats.added and seconds else 0.0,
        }
    )


class RetrievalEvalConfig(dg.Config):
    seed_chunk_size: int = Field(
        5000, ge=1, description="chunk size of the seed notebook's setup, scored as a baseline"
    )
    seed_chunk_overlap: int = Field(30, ge=0, description="its overlap (less than seed_chunk_size)")
    max_eval_contracts: int = Field(
        0,
        ge=0,
        description="score the first N eval-split contracts by id (0 = all); "
        "each scored contract's chunks are embedded by every model",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self):
        check_chunking(self.seed_chunk_size, self.seed_chunk_overlap)
        return self


@dg.asset(pool=DUCKDB_POOL, group_name=RETRIEVAL, deps=[vector_index, "retriever_model"])
def retrieval_eval(
    context: dg.AssetExecutionContext,
    config: RetrievalEvalConfig,
    cuad_contracts: pl.DataFrame,
    cuad_annotations: pl.DataFrame,
    contract_chunks: pl.DataFrame,
    embedder: EmbedderResource,
    chroma: ChromaResource,
) -> dg.Output[pl.DataFrame]:
    """Recall@1/3/5 on held-out contracts: the index, BM25, hybrid, the fine-tuned retriever (alone and in
    hybrid), and the seed's 5,000-char setup; `best_method` is the highest recall@3."""
    emb = embedder.get()
    eval_contracts = cuad_contracts.filter(pl.col("split") == "eval").sort("contract_id")
    if config.max_eval_contracts:
        eval_contracts = eval_contracts.head(config.max_eval_contracts)
    embed = memoised(emb.embed)  # BM25+dense hybrid re-ranks the chunks dense_index ranks: embed them once
    eval_ids = set(eval_contracts["contract_id"].to_list())
    questions = eval_questions(
        cuad_annotations.filter(pl.col("contract_id").is_in(list(eval_ids))).to_dicts(), eval_ids
    )
    chunks = contract_chunks.filter(pl.col("contract_id").is_in(list(eval_ids))).to_dicts()
    k = max(KS)
    store = chroma.store(emb)
    if eval_ids:  # the index holds these chunks' vectors already: the hybrid row reuses them
        got = store.collection().get(
            where={"contract_id": {"$in": sorted(eval_ids)}}, include=["documents", "embeddings"]
        )
        embed.memo.update(zip(got["documents"], np.asarray(got["embeddings"], dtype=np.float32)))
    hits = store.search(emb.embed([q.question for q in questions]), [q.contract_id for q in questions], k)
    dense = [[(h["start"], h["end"]) for h in hs] for hs in hits]
    seed_chunks = chunk_contracts(eval_contracts.to_dicts(), config.seed_chunk_size, config.seed_chunk_overlap)
    ranked = {
        "dense_index": dense,
        "bm25": rank_bm25(questions, chunks, k),
        "hybrid": rank_hybrid(questions, chunks, embed, k),
        "seed_dense_5000": rank_dense(questions, seed_chunks, embed, k),
    }
    tuned, why = trained_retriever(context.instance)
    if tuned is not None:
        ft = model_embedder(tuned)
        ranked |= {
            "fine_tuned": rank_dense(questions, chunks, ft, k),
            "hybrid_fine_tuned": rank_hybrid(questions, chunks, ft, k),
        }
    rows = [row for method, r in ranked.items() for row in recall_rows(method, questions, r)]
    df = pl.DataFrame(rows)
    table = df.pivot(on="k", index="method", values="recall")
    table = table.rename({c: f"recall@{c}" for c in table.columns if c != "method"})
    at3 = df.filter(pl.col("k") == 3).sort("recall", descending=True)
    table = table.join(
        at3.select("method", pl.col("recall_low").alias("@3 low"), pl.col("recall_high").alias("@3 high")),
        on="method",
        how="left",
    )
    best = at3["method"][0] if at3.height else None
    # The best method against the two baselines the retrieval target names, paired on the same questions.
    versus = compare_recall(questions, ranked, best, ("bm25", "seed_dense_5000")) if best else []
    return dg.Output(
        df,
        metadata={
            "n_questions": len(questions),
            "eval_contracts": len(eval_ids),
            "best_method": best,
            "fine_tuned": why,
            "default_without_fine_tuned": DEFAULT_RETRIEVER,
            **{f"recall3_best_minus_{c['versus']}": c["diff"] for c in versus},
            **{f"recall3_best_vs_{c['versus']}_p": c["p_value"] for c in versus},
            "recall": dg.MetadataValue.md(md_table(table.to_dicts(), table.columns)),
            "paired_recall3": dg.MetadataValue.md(md_table(versus, PAIRED_COLUMNS)),
        },
    )


PAIRED_COLUMNS = ["method", "versus", "k", "diff", "low", "high", "p_value", "n", "contracts"]
