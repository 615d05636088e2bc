"""Blocking checks: the vector index holds exactly one vector per chunk; the fine-tuned retriever saw no
eval-split contract."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from resources.project import ChromaResource, EmbedderResource
from selfinstruct.core.known import existing_tables
from selfinstruct_assets.held_out import scalar, trained_only_on_train


@dg.asset_check(
    asset="vector_index",
    blocking=True,
    description="index count equals chunk count",
    additional_deps=["contract_chunks"],
)
def index_matches_chunks(
    duckdb: DuckDBResource, embedder: EmbedderResource, chroma: ChromaResource
) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        added = "added_contract_chunks" in existing_tables(lambda sql: conn.execute(sql).fetchall())
    chunks = scalar(duckdb, "select count(*) from contract_chunks")
    # Contracts added through the inbox share the collection (see intake/contract_assets.py).
    chunks += scalar(duckdb, "select count(*) from added_contract_chunks") if added else 0
    indexed = chroma.store(embedder.get()).collection().count()
    return dg.AssetCheckResult(passed=chunks == indexed, metadata={"chunks": chunks, "indexed": indexed})


@dg.asset_check(
    asset="retriever_model",
    blocking=True,
    additional_deps=["cuad_contracts"],
    description="the fine-tuned retriever was trained on train-split contracts only",
)
def retriever_model_train_only(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    from selfinstruct.retrieval.model import METRICS_FILE

    return trained_only_on_train(context, duckdb, "retriever_model", METRICS_FILE)


RETRIEVAL_CHECKS = [index_matches_chunks, retriever_model_train_only]
